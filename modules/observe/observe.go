// Package observe owns the observe node: an observation window that samples
// hosts (CPU, memory, disk, load, log lines) and re-runs checks every
// interval until a deadline, and fails, so that the executor rolls back, as
// soon as a bound is breached. Samples are streamed to the run's
// metrics.jsonl; Summarize reads them back for `upgrader status`.
//
// It imports only modules and lang/diags.
package observe

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// Observe is the observe node kind.
type Observe struct{}

var (
	_ modules.Node       = (*Observe)(nil)
	_ modules.Validator  = (*Observe)(nil)
	_ modules.Repeatable = (*Observe)(nil)
)

// New returns the observe module.
func New() *Observe { return &Observe{} }

func (*Observe) Kind() string { return "observe" }

func (*Observe) Outputs() map[string]cty.Type {
	return map[string]cty.Type{"samples": cty.Number, "passed": cty.Bool}
}

// Safe: a window interrupted by a crash resumes from its checkpoints.
func (*Observe) Safe(*modules.Config) bool { return true }

func (*Observe) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, ds := parseSettings(cfg, true)
	return ds
}

// Plan describes the window and probes each host once, read-only, so that a
// missing log file or disk path shows up as a warning before apply.
func (*Observe) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	s, ds := parseSettings(req.Config, true)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	p := &modules.Plan{Change: modules.Read, Summary: s.describe(), Undo: "nothing to undo (reads only); a breach rolls back the phase"}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range s.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			warns := planProbe(ctx, req.Env, s, h)
			mu.Lock()
			p.Warnings = append(p.Warnings, warns...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Strings(p.Warnings)
	return p, nil
}

func planProbe(ctx context.Context, env modules.Env, s *settings, host string) []string {
	rd, err := env.Reader(host)
	if err != nil {
		return []string{fmt.Sprintf("host %q: %v", host, err)}
	}
	pr := &probeReq{Nonce: newNonce(), DiskPaths: s.DiskPaths}
	for _, l := range s.Logs {
		if l.onHost(host) {
			pr.Logs = append(pr.Logs, logReq{Path: l.Path, Start: true})
		}
	}
	raw, err := runProbe(ctx, rd, pr, 30*time.Second)
	if err != nil {
		return []string{fmt.Sprintf("host %q cannot be sampled yet: %v", host, err)}
	}
	var warns []string
	if !raw.CPUOK || !raw.MemOK || !raw.LoadOK {
		warns = append(warns, fmt.Sprintf("host %q: /proc/stat, /proc/meminfo or /proc/loadavg unreadable: CPU, memory or load will not be watched", host))
	}
	for _, d := range raw.Disk {
		if !d.OK && s.MaxDisk != nil {
			warns = append(warns, fmt.Sprintf("host %q: %s does not exist yet: its filesystem is not watched until it does", host, d.Path))
		}
	}
	for i, l := range raw.Logs {
		if l.Unreadable {
			warns = append(warns, fmt.Sprintf("host %q: log %s is not readable by %s: no line of it will be seen (set sudo in the connection, or fix its permissions)", host, pr.Logs[i].Path, userOf(rd)))
		}
		if l.Size < 0 {
			warns = append(warns, fmt.Sprintf("host %q: log %s does not exist yet: it is read from its start once it appears", host, pr.Logs[i].Path))
		}
	}
	return warns
}

// describe is the plan's one-line summary.
func (s *settings) describe() string {
	var b strings.Builder
	b.WriteString("observe ")
	if len(s.Hosts) > 0 {
		b.WriteString(strings.Join(s.Hosts, ", "))
	} else {
		b.WriteString("checks")
	}
	fmt.Fprintf(&b, " for %s every %s", s.Duration, s.Interval)
	var bounds []string
	add := func(name string, v *float64, unit string) {
		if v != nil {
			bounds = append(bounds, fmt.Sprintf("%s <= %s%s", name, fmtNum(*v), unit))
		}
	}
	add("cpu", s.MaxCPU, "%")
	add("memory", s.MaxMem, "%")
	add("disk", s.MaxDisk, "%")
	add("load", s.MaxLoad, "")
	for _, l := range s.Logs {
		on := ""
		if l.Host != "" {
			on = " on " + l.Host
		}
		bounds = append(bounds, fmt.Sprintf("%s%s %s <= %d", l.Path, on, l.Shown, l.MaxMatches))
	}
	if len(s.Checks) > 0 {
		bounds = append(bounds, fmt.Sprintf("checks %s (%d failure(s) in a row)", strings.Join(s.Checks, ", "), s.MaxCheckFailures))
	}
	if len(bounds) > 0 {
		b.WriteString(", bounds ")
		b.WriteString(strings.Join(bounds, ", "))
	}
	if s.BreachFor > 0 {
		fmt.Fprintf(&b, " (breach_for %s)", s.BreachFor)
	}
	return b.String()
}

// Apply runs the window until its deadline, an approval, or a breach.
func (*Observe) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	s, ds := parseSettings(req.Config, false)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	w, err := newWindow(req, s)
	if err != nil {
		return nil, err
	}
	defer w.out.Close()
	return w.run(ctx)
}

func userOf(rd modules.Reader) string {
	if rd == nil {
		return "the connection's user"
	}
	if u := rd.Host().User; u != "" {
		return "user " + u
	}
	return "the connection's user"
}
