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
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/metricsrc"
)

// Observe is the observe node kind.
type Observe struct{}

var (
	_ modules.Node       = (*Observe)(nil)
	_ modules.Validator  = (*Observe)(nil)
	_ modules.Repeatable = (*Observe)(nil)
	_ modules.Describer  = (*Observe)(nil)
)

// New returns the observe module.
func New() *Observe { return &Observe{} }

func (*Observe) Kind() string { return "observe" }

func (*Observe) Outputs() map[string]cty.Type {
	return map[string]cty.Type{"samples": cty.Number, "passed": cty.Bool}
}

// Describe: observe only reads. The window's line as the plan shows it, or,
// while its settings are not known yet, its hosts and duration.
func (*Observe) Describe(cfg *modules.Config) modules.Description {
	if s, ds := parseSettings(cfg, true); !ds.HasErrors() {
		return modules.Description{Summary: s.describe(), Change: modules.Read}
	}
	return modules.Description{Attrs: []string{"hosts", "duration"}, Change: modules.Read}
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
	details := make([]string, len(s.Metrics))
	errs := make([]error, len(s.Metrics))
	for i := range s.Metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var warns []string
			details[i], warns, errs[i] = planMetric(ctx, req.Env, s, &s.Metrics[i])
			mu.Lock()
			p.Warnings = append(p.Warnings, warns...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	p.Detail = strings.Join(details, "\n")
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

// planMetric asks the metric's source for the query's value now (and its
// baseline): the source answers, the query parses, it has data. A query
// Prometheus refuses is an error; no answer or no data is a warning.
func planMetric(ctx context.Context, env modules.Env, s *settings, m *metricSpec) (string, []string, error) {
	src, err := env.MetricSource(m.Source)
	if err != nil {
		return "", nil, fmt.Errorf("metric %q: %w", m.Name, err)
	}
	c, err := metricsrc.Open(src)
	if err != nil {
		return "", nil, fmt.Errorf("metric %q: %w", m.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metric %s: %s", m.Name, m.bounds())
	res, err := c.Query(ctx, m.Query, time.Time{})
	switch {
	case metricsrc.IsBadQuery(err):
		return "", nil, fmt.Errorf("metric %q: %v; query: %s", m.Name, err, m.Shown)
	case err != nil:
		b.WriteString("; now: unknown (the source does not answer)")
		return b.String(), []string{fmt.Sprintf("metric %q: %s does not answer: %v (on_no_data = %q applies while it does not)", m.Name, metricsrc.Shown(src), err, m.OnNoData)}, nil
	case len(res.Series) == 0:
		b.WriteString("; now: no data")
		return b.String(), []string{fmt.Sprintf("metric %q: the query returns no series now (a metric or label name typo? no scrape yet?): on_no_data = %q applies; query: %s", m.Name, m.OnNoData, m.Shown)}, nil
	}
	var warns []string
	for _, w := range res.Warnings {
		warns = append(warns, fmt.Sprintf("metric %q: Prometheus warns: %s", m.Name, w))
	}
	var base map[string]float64
	if m.Baseline > 0 {
		now := time.Now()
		if mean, err := c.Mean(ctx, m.Query, now.Add(-m.Baseline), now, max(s.Interval, 15*time.Second)); err != nil {
			warns = append(warns, fmt.Sprintf("metric %q: baseline: %v", m.Name, err))
		} else {
			base = map[string]float64{}
			for _, x := range mean.Series {
				base[x.Name] = x.Value
			}
			if len(base) == 0 {
				warns = append(warns, fmt.Sprintf("metric %q: the query had no value over the last %s: no baseline, relative bounds would not be judged", m.Name, m.Baseline))
			}
		}
	}
	const shown = 10
	for i, x := range res.Series {
		if i == shown {
			fmt.Fprintf(&b, "\n  ... and %d more series", len(res.Series)-shown)
			break
		}
		fmt.Fprintf(&b, "\n  now%s %s", seriesText(x.Name), metricsrc.Num(x.Value))
		if v, ok := base[x.Name]; ok {
			fmt.Fprintf(&b, ", baseline (last %s) %s", m.Baseline, metricsrc.Num(v))
		}
		if math.IsNaN(x.Value) {
			warns = append(warns, fmt.Sprintf("metric %q%s is NaN now (0/0: no requests?): on_no_data = %q applies to it", m.Name, seriesText(x.Name), m.OnNoData))
		}
	}
	return b.String(), warns, nil
}

// bounds lists a metric's bounds for the plan.
func (m *metricSpec) bounds() string {
	var p []string
	if m.Max != nil {
		p = append(p, "<= "+metricsrc.Num(*m.Max))
	}
	if m.Min != nil {
		p = append(p, ">= "+metricsrc.Num(*m.Min))
	}
	if m.MaxInc != nil {
		p = append(p, fmt.Sprintf("at most +%s%% of its %s baseline", metricsrc.Num(*m.MaxInc), m.Baseline))
	}
	if m.MaxDec != nil {
		p = append(p, fmt.Sprintf("at most -%s%% of its %s baseline", metricsrc.Num(*m.MaxDec), m.Baseline))
	}
	out := strings.Join(p, ", ")
	if m.BreachFor > 0 {
		out += fmt.Sprintf(" (breach_for %s)", m.BreachFor)
	}
	return out + fmt.Sprintf(", on_no_data %s; query: %s", m.OnNoData, m.Shown)
}

// describe is the plan's one-line summary.
func (s *settings) describe() string {
	var b strings.Builder
	b.WriteString("observe ")
	var what []string
	if len(s.Hosts) > 0 {
		what = append(what, strings.Join(s.Hosts, ", "))
	}
	if len(s.Metrics) > 0 {
		what = append(what, fmt.Sprintf("%d metric(s)", len(s.Metrics)))
	}
	if len(what) == 0 {
		what = append(what, "checks")
	}
	b.WriteString(strings.Join(what, " and "))
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
