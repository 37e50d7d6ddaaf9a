// Package modtest offers a modules.Env for module tests: hosts are given as
// modules.Target values (real test hosts from internal/testbed in integration
// tests), checkpoints live in memory. It is for tests only.
package modtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty/function"

	"github.com/upgrader-dev/upgrader/modules"
)

// Env is a modules.Env for tests.
type Env struct {
	ID        string
	Dir       string // state directory
	Targets   map[string]modules.Target
	Databases map[string]*modules.Database
	// MetricSources by name (metric_source blocks).
	MetricSources map[string]*modules.MetricSource
	// PlanOnly makes Target fail, as at plan time.
	PlanOnly bool
	// Checks are run by Check(name).
	Checks map[string]func(ctx context.Context) error
	// Funcs is what Functions returns (nil: the module's own set).
	Funcs map[string]function.Function
	// Protected is what ProtectedRun returns.
	Protected string

	mu          sync.Mutex
	checkpoints map[string][]byte
	approved    map[string]bool
	Done, Total int64
}

var _ modules.Env = (*Env)(nil)

func (e *Env) Functions() map[string]function.Function { return e.Funcs }

func (e *Env) RunID() string        { return e.ID }
func (e *Env) ProtectedRun() string { return e.Protected }
func (e *Env) StateDir() string     { return e.Dir }

func (e *Env) Reader(host string) (modules.Reader, error) {
	t, ok := e.Targets[host]
	if !ok {
		return nil, fmt.Errorf("no host %q", host)
	}
	return t, nil
}

func (e *Env) Target(host string) (modules.Target, error) {
	if e.PlanOnly {
		return nil, fmt.Errorf("plan cannot change host %q", host)
	}
	t, ok := e.Targets[host]
	if !ok {
		return nil, fmt.Errorf("no host %q", host)
	}
	return t, nil
}

func (e *Env) Database(name string) (*modules.Database, error) {
	d, ok := e.Databases[name]
	if !ok {
		return nil, fmt.Errorf("no database %q", name)
	}
	return d, nil
}

func (e *Env) MetricSource(name string) (*modules.MetricSource, error) {
	m, ok := e.MetricSources[strings.TrimPrefix(name, "metric_source.")]
	if !ok {
		return nil, fmt.Errorf("no metric_source %q", name)
	}
	return m, nil
}

func (e *Env) DialDatabase(name string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	d, err := e.Database(name)
	if err != nil {
		return nil, err
	}
	if d.Host != "" {
		t, ok := e.Targets[d.Host]
		if !ok {
			return nil, fmt.Errorf("no host %q", d.Host)
		}
		return t.Dial, nil
	}
	var dl net.Dialer
	return dl.DialContext, nil
}

func (e *Env) Check(ctx context.Context, name string) error {
	f, ok := e.Checks[name]
	if !ok {
		return fmt.Errorf("no check %q", name)
	}
	return f(ctx)
}

func (e *Env) Checkpoint(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checkpoints == nil {
		e.checkpoints = map[string][]byte{}
	}
	e.checkpoints[key] = b
	return nil
}

func (e *Env) Recall(key string, v any) (bool, error) {
	e.mu.Lock()
	b, ok := e.checkpoints[key]
	e.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// Approve marks node as approved, as `upgrader approve` would.
func (e *Env) Approve(node string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.approved == nil {
		e.approved = map[string]bool{}
	}
	e.approved[node] = true
}

func (e *Env) Approved(node string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.approved[node]
}

func (e *Env) Progress(done, total int64) {
	e.mu.Lock()
	e.Done, e.Total = done, total
	e.mu.Unlock()
}

// samplesFile is where AppendSamples writes: the local state directory's
// runs/ID/metrics.jsonl, as the executor's local store does.
func (e *Env) samplesFile() string { return filepath.Join(e.Dir, "runs", e.ID, "metrics.jsonl") }

// AppendSamples appends lines in one write; a torn last line left by a
// killed writer is ended first, so it never swallows the first new line.
func (e *Env) AppendSamples(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return modules.AppendLines(e.samplesFile(), lines)
}

// ReadSamples streams the complete lines AppendSamples wrote.
func (e *Env) ReadSamples(fn func(line []byte) error) error {
	return modules.ReadLines(e.samplesFile(), fn)
}
