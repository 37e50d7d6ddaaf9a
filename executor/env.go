package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty/function"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// session is what plan and apply share: the configuration, the host
// connections, checkpoints and the observer.
type session struct {
	opts  *Options
	cfg   *lang.Config
	ctx   context.Context // for connections made from Env methods (which take no ctx)
	runID string

	obsMu sync.Mutex

	connMu sync.Mutex
	conns  map[string]modules.Target
	dialMu map[string]*sync.Mutex

	// checkpoints and journal are nil at plan time.
	r *run
}

func newSession(ctx context.Context, opts *Options, runID string) *session {
	return &session{opts: opts, cfg: opts.Config, ctx: ctx, runID: runID, conns: map[string]modules.Target{}, dialMu: map[string]*sync.Mutex{}}
}

func (s *session) emit(ev Event) {
	if s.opts.Observer == nil {
		return
	}
	if ev.TS.IsZero() {
		ev.TS = time.Now().UTC()
	}
	if ev.Run == "" {
		ev.Run = s.runID
	}
	sec := secretsOf(s.cfg)
	ev.Message, ev.Error, ev.Skipped = sec.Redact(ev.Message), sec.Redact(ev.Error), sec.Redact(ev.Skipped)
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.opts.Observer(ev)
}

// target connects to host once and keeps the connection for the run.
func (s *session) target(host string) (modules.Target, error) {
	h := s.cfg.Hosts[host]
	if h == nil {
		return nil, fmt.Errorf("no host %q in the configuration", host)
	}
	if s.opts.Hosts == nil {
		return nil, modules.OnHost(host, errors.New("offline, no host may be contacted"))
	}
	s.connMu.Lock()
	if t, ok := s.conns[host]; ok {
		s.connMu.Unlock()
		return t, nil
	}
	mu := s.dialMu[host]
	if mu == nil {
		mu = &sync.Mutex{}
		s.dialMu[host] = mu
	}
	s.connMu.Unlock()

	mu.Lock() // one dial per host, other hosts dial in parallel
	defer mu.Unlock()
	s.connMu.Lock()
	t, ok := s.conns[host]
	s.connMu.Unlock()
	if ok {
		return t, nil
	}
	t, err := s.opts.Hosts.Target(s.ctx, h)
	if err != nil {
		return nil, err // the transport's errors name the host
	}
	s.connMu.Lock()
	s.conns[host] = t
	s.connMu.Unlock()
	return t, nil
}

// env is the modules.Env given to one module call.
type env struct {
	s        *session
	node     string
	host     string
	planOnly bool

	progMu   sync.Mutex
	lastProg time.Time
}

var _ modules.Env = (*env)(nil)

// Functions is lang's table of pure functions (built once per configuration).
func (e *env) Functions() map[string]function.Function { return e.s.cfg.PureFunctions() }

func (e *env) RunID() string { return e.s.runID }

// ProtectedRun reads only the ends of the journals (journal.LastDone).
func (e *env) ProtectedRun() string { return journal.LastDone(e.s.opts.StateDir) }
func (e *env) StateDir() string     { return e.s.opts.StateDir }

func (e *env) AppendSamples(lines []byte) error {
	if e.planOnly || e.s.r == nil {
		return errors.New("no samples at plan time")
	}
	return e.s.opts.store().AppendSamples(e.s.ctx, e.s.runID, lines)
}

func (e *env) ReadSamples(fn func(line []byte) error) error {
	return e.s.opts.store().Samples(e.s.ctx, e.s.runID, fn)
}

func (e *env) Reader(host string) (modules.Reader, error) { return e.s.target(host) }

func (e *env) Target(host string) (modules.Target, error) {
	if e.planOnly {
		return nil, modules.OnHost(host, errors.New("plan cannot change hosts (a module asked for a Target at plan time)"))
	}
	return e.s.target(host)
}

func (e *env) Database(name string) (*modules.Database, error) {
	name = strings.TrimPrefix(name, "database.")
	d := e.s.cfg.Databases[name]
	if d == nil {
		return nil, fmt.Errorf("no database %q in the configuration", name)
	}
	return &modules.Database{Name: d.Name, Driver: d.Driver, DSN: d.DSN, Host: d.Host}, nil
}

func (e *env) MetricSource(name string) (*modules.MetricSource, error) {
	name = strings.TrimPrefix(name, "metric_source.")
	m := e.s.cfg.MetricSources[name]
	if m == nil {
		return nil, fmt.Errorf("no metric_source %q in the configuration", name)
	}
	return &modules.MetricSource{Name: m.Name, Kind: m.Kind, URL: m.URL, Headers: m.Headers, SensitiveURL: m.SensitiveURL, Timeout: m.Timeout}, nil
}

func (e *env) DialDatabase(name string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	d, err := e.Database(name)
	if err != nil {
		return nil, err
	}
	if d.Host == "" {
		var dl net.Dialer
		return dl.DialContext, nil
	}
	// A tunnel only reads through the host; plan may use it too.
	t, err := e.s.target(d.Host)
	if err != nil {
		return nil, err
	}
	return t.Dial, nil
}

func (e *env) Check(ctx context.Context, name string) error {
	addr := name
	if !strings.HasPrefix(addr, lang.KindCheck+".") {
		addr = lang.KindCheck + "." + name
	}
	n := e.s.cfg.Nodes[addr]
	if n == nil || n.Check == nil {
		return fmt.Errorf("no check %q in the configuration", name)
	}
	if e.planOnly || e.s.r == nil {
		return fmt.Errorf("check %s cannot run at plan time", addr)
	}
	return e.s.r.runCheck(ctx, n)
}

func (e *env) Checkpoint(key string, v any) error {
	if e.planOnly || e.s.r == nil {
		return errors.New("no checkpoints at plan time")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", key, err)
	}
	return e.s.r.journal(journal.Event{Type: journal.Checkpoint, Node: e.node, Host: e.host}, evData{Key: key, Value: b})
}

func (e *env) Recall(key string, v any) (bool, error) {
	if e.s.r == nil {
		return false, nil
	}
	e.s.r.mu.Lock()
	b, ok := e.s.r.st.Checkpoints[key]
	e.s.r.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

func (e *env) Approved(node string) bool {
	if e.s.r == nil {
		return false
	}
	a, err := e.s.opts.store().Approval(e.s.ctx, e.s.runID, node)
	if err != nil || a == nil || a.Rejected() {
		return false
	}
	r := e.s.r
	r.mu.Lock()
	first := !r.approvedSeen[node]
	r.approvedSeen[node] = true
	r.mu.Unlock()
	if first && !e.planOnly { // the journal says who ended the window, once
		_ = r.journal(journal.Event{Type: journal.Approved, Node: node}, evData{By: a.By, Message: "by " + a.By})
	}
	return true
}

// Progress is throttled to a few events a second per call site.
func (e *env) Progress(done, total int64) {
	e.progMu.Lock()
	now := time.Now()
	if now.Sub(e.lastProg) < 200*time.Millisecond && done != total {
		e.progMu.Unlock()
		return
	}
	e.lastProg = now
	e.progMu.Unlock()
	e.s.emit(Event{Type: EvProgress, Node: e.node, Host: e.host, Done: done, Total: total})
}
