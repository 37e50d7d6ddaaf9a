package observe

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/metricsrc"
)

// What a metric does when its query has no value (an error, an empty
// vector, NaN).
const (
	noDataFail         = "fail"         // the window fails at once
	noDataPass         = "pass"         // counts as within bounds
	noDataInconclusive = "inconclusive" // a breach once it lasts breach_for (the default)
)

// metricBlockSpec is the body of a metric block inside observe.
func metricBlockSpec() hcldec.Spec {
	num := func(n string) hcldec.Spec { return &hcldec.AttrSpec{Name: n, Type: cty.Number} }
	str := func(n string) hcldec.Spec { return &hcldec.AttrSpec{Name: n, Type: cty.String} }
	return &hcldec.BlockTupleSpec{TypeName: "metric", Nested: &hcldec.ObjectSpec{
		"name":                 &hcldec.BlockLabelSpec{Index: 0, Name: "name"},
		"source":               &hcldec.AttrSpec{Name: "source", Type: cty.DynamicPseudoType, Required: true},
		"query":                &hcldec.AttrSpec{Name: "query", Type: cty.String, Required: true},
		"max":                  num("max"),
		"min":                  num("min"),
		"max_increase_percent": num("max_increase_percent"),
		"max_decrease_percent": num("max_decrease_percent"),
		"baseline":             str("baseline"),
		"breach_for":           str("breach_for"),
		"on_no_data":           str("on_no_data"),
	}}
}

// metricSpec is one metric block, checked.
type metricSpec struct {
	Index     int
	Name      string
	Source    string // metric_source name
	Query     string
	Shown     string // the query as messages show it (trimmed; "(sensitive)" when it is)
	Max, Min  *float64
	MaxInc    *float64 // max_increase_percent
	MaxDec    *float64 // max_decrease_percent
	Baseline  time.Duration
	BreachFor time.Duration
	OnNoData  string
}

func (m *metricSpec) relative() bool { return m.MaxInc != nil || m.MaxDec != nil }

func parseMetric(cfg *modules.Config, mv cty.Value, i int, windowBreachFor time.Duration, partial bool, at func(attr, summary, detail string)) (metricSpec, bool) {
	m := metricSpec{Index: i, Name: modules.GetString(mv, "name"), BreachFor: windowBreachFor, OnNoData: noDataInconclusive}
	key := func(attr string) string { return fmt.Sprintf("metric.%d.%s", i, attr) }
	ok := true
	bad := func(attr, summary, detail string) {
		at(key(attr), summary, fmt.Sprintf("metric %q: %s", m.Name, detail))
		ok = false
	}
	if m.Name == "" {
		at(fmt.Sprintf("metric.%d", i), "Invalid metric name", "A metric block needs a name: metric \"error_ratio\" { ... }.")
		ok = false
	}
	if src := modules.Get(mv, "source"); !src.IsKnown() {
		if !partial {
			bad("source", "Unknown metric source", "source is not known at apply time.")
		}
		ok = false
	} else if m.Source = modules.RefName(src); m.Source == "" || modules.GetString(src, "type") == "" {
		bad("source", "Invalid metric source", "source must be a metric_source reference, like metric_source.prom.")
	}
	if q := modules.Get(mv, "query"); !q.IsKnown() {
		ok = false
	} else if m.Query = strings.TrimSpace(modules.GetString(mv, "query")); m.Query == "" {
		bad("query", "Empty query", "query must be a PromQL expression, like sum(rate(http_requests_total{code=~\"5..\"}[2m])).")
	} else {
		m.Shown = metricsrc.Trim(m.Query)
		if isSensitive(mv, "query") {
			m.Shown = "(sensitive)"
		}
	}
	num := func(attr string) *float64 {
		f, set, known := getFloat(mv, attr)
		if !set || !known {
			if set {
				ok = false
			}
			return nil
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			bad(attr, "Invalid bound", fmt.Sprintf("%s must be a finite number.", attr))
			return nil
		}
		return &f
	}
	m.Max, m.Min = num("max"), num("min")
	m.MaxInc, m.MaxDec = num("max_increase_percent"), num("max_decrease_percent")
	if m.MaxInc != nil && *m.MaxInc < 0 {
		bad("max_increase_percent", "Bound out of range", fmt.Sprintf("max_increase_percent must not be negative, got %g.", *m.MaxInc))
	}
	if m.MaxDec != nil && (*m.MaxDec < 0 || *m.MaxDec > 100) {
		bad("max_decrease_percent", "Bound out of range", fmt.Sprintf("max_decrease_percent must be between 0 and 100, got %g.", *m.MaxDec))
	}
	if m.Max != nil && m.Min != nil && *m.Min > *m.Max {
		bad("min", "Bounds cross", fmt.Sprintf("min %g is above max %g: every value would breach.", *m.Min, *m.Max))
	}
	dur := func(attr string, def time.Duration) time.Duration {
		raw := modules.Get(mv, attr)
		if !raw.IsKnown() {
			ok = false
			return def
		}
		d, err := modules.GetDuration(mv, attr, def)
		if err != nil {
			bad(attr, "Invalid duration", err.Error())
			return def
		}
		if d < 0 {
			bad(attr, "Invalid duration", fmt.Sprintf("%s must not be negative, got %s.", attr, d))
			return def
		}
		return d
	}
	m.BreachFor = dur("breach_for", windowBreachFor)
	m.Baseline = dur("baseline", 0)
	if raw := modules.Get(mv, "baseline"); !raw.IsNull() && raw.IsKnown() && m.Baseline == 0 && ok {
		bad("baseline", "Invalid baseline", "baseline is how long before the window the query is averaged, like \"30m\"; it must be greater than zero.")
	}
	if m.relative() && modules.Get(mv, "baseline").IsNull() {
		attr := "max_increase_percent"
		if m.MaxInc == nil {
			attr = "max_decrease_percent"
		}
		bad(attr, "Missing baseline", attr+" is relative to a baseline: add baseline = \"30m\" (the query averaged over the 30 minutes before the window starts).")
	}
	if noBound(&m) && ok {
		bad("query", "No bound", "a metric needs a bound: max, min, max_increase_percent or max_decrease_percent.")
	}
	if raw := modules.Get(mv, "on_no_data"); !raw.IsKnown() {
		ok = false
	} else if s := modules.GetString(mv, "on_no_data"); s != "" {
		switch s {
		case noDataFail, noDataPass, noDataInconclusive:
			m.OnNoData = s
		default:
			bad("on_no_data", "Invalid on_no_data", fmt.Sprintf("on_no_data is \"fail\", \"pass\" or \"inconclusive\", not %q.", s))
		}
	}
	return m, ok
}

// noBound reports a metric without any bound.
func noBound(m *metricSpec) bool { return m.Max == nil && m.Min == nil && !m.relative() }

// metricKey is a metric series' key in the breach timers.
func metricKey(name, series, bound string) string {
	return "metric|" + name + "|" + series + "|" + bound
}

// seriesText is a series as messages show it ("" for the one unnamed series).
func seriesText(series string) string {
	if series == "" || series == "{}" {
		return ""
	}
	return " " + series
}

// evaluateMetric judges one metric record: its bounds (absolute and
// relative to the baseline) and what no data means. It sets rec.Over.
func (s *settings) evaluateMetric(st *state, rec *Record) []string {
	m := s.metric(rec.Metric)
	if m == nil {
		return nil
	}
	at := rec.TS
	who := fmt.Sprintf("metric %q%s", m.Name, seriesText(rec.Series))
	tail := "; query: " + m.Shown
	var fails []string
	timer := func(key string) (time.Time, bool) {
		since, ok := st.BreachStart[key]
		if !ok {
			since = at
			st.BreachStart[key] = at
		}
		return since, at.Sub(since) >= m.BreachFor
	}
	lasted := func(since time.Time) string {
		if m.BreachFor == 0 {
			return ""
		}
		return fmt.Sprintf(" since %s (for %s, breach_for %s)", since.UTC().Format(time.RFC3339), at.Sub(since).Round(time.Second), m.BreachFor)
	}
	noDataKey := metricKey(m.Name, rec.Series, "no_data")
	if rec.Value == nil {
		why := rec.NoData
		if rec.BadQuery {
			rec.Over = append(rec.Over, "query")
			return []string{fmt.Sprintf("%s: the query is refused: %s%s", who, why, tail)}
		}
		switch m.OnNoData {
		case noDataPass:
			delete(st.BreachStart, noDataKey)
			return nil
		case noDataFail:
			rec.Over = append(rec.Over, "no_data")
			return []string{fmt.Sprintf("%s: no data (on_no_data = \"fail\"): %s%s", who, why, tail)}
		}
		rec.Over = append(rec.Over, "no_data")
		since, breached := timer(noDataKey)
		if breached {
			fails = append(fails, fmt.Sprintf("%s: no data (on_no_data = \"inconclusive\")%s: %s%s", who, lasted(since), why, tail))
		}
		return fails
	}
	delete(st.BreachStart, noDataKey)
	delete(st.BreachStart, metricKey(m.Name, "", "no_data"))
	v := *rec.Value
	check := func(bound string, breached bool, msg string) {
		key := metricKey(m.Name, rec.Series, bound)
		if !breached {
			delete(st.BreachStart, key)
			return
		}
		rec.Over = append(rec.Over, bound)
		if since, ok := timer(key); ok {
			fails = append(fails, fmt.Sprintf("%s: %s%s%s", who, msg, lasted(since), tail))
		}
	}
	if m.Max != nil {
		check("max", v > *m.Max, fmt.Sprintf("%s is above max %s", metricsrc.Num(v), metricsrc.Num(*m.Max)))
	}
	if m.Min != nil {
		check("min", v < *m.Min, fmt.Sprintf("%s is below min %s", metricsrc.Num(v), metricsrc.Num(*m.Min)))
	}
	if m.relative() {
		b := rec.Baseline
		if b == nil {
			// No baseline for this series yet (the query failed at the
			// window's start, or the series is new): the relative bounds
			// cannot be judged; recorded as such, absolute bounds still hold.
			return fails
		}
		base := fmt.Sprintf("baseline %s (mean over the %s before the window)", metricsrc.Num(*b), m.Baseline)
		if m.MaxInc != nil {
			limit := *b * (1 + *m.MaxInc/100)
			check("max_increase_percent", v > limit, fmt.Sprintf("%s is %s above its %s: max_increase_percent %s allows up to %s",
				metricsrc.Num(v), pct(v, *b), base, metricsrc.Num(*m.MaxInc), metricsrc.Num(limit)))
		}
		if m.MaxDec != nil {
			limit := *b * (1 - *m.MaxDec/100)
			check("max_decrease_percent", v < limit, fmt.Sprintf("%s is %s below its %s: max_decrease_percent %s allows down to %s",
				metricsrc.Num(v), pct(*b, v), base, metricsrc.Num(*m.MaxDec), metricsrc.Num(limit)))
		}
	}
	return fails
}

// pct is how much bigger a is than b, in percent of b.
func pct(a, b float64) string {
	if b == 0 {
		return "infinitely"
	}
	return fmt.Sprintf("%s%%", metricsrc.Num(100*(a-b)/math.Abs(b)))
}

func (s *settings) metric(name string) *metricSpec {
	for i := range s.Metrics {
		if s.Metrics[i].Name == name {
			return &s.Metrics[i]
		}
	}
	return nil
}

// metricClients opens one client per metric source the window uses.
func metricClients(env modules.Env, s *settings) (map[string]*metricsrc.Client, error) {
	out := map[string]*metricsrc.Client{}
	for _, m := range s.Metrics {
		if out[m.Source] != nil {
			continue
		}
		src, err := env.MetricSource(m.Source)
		if err != nil {
			return nil, err
		}
		c, err := metricsrc.Open(src)
		if err != nil {
			return nil, err
		}
		out[m.Source] = c
	}
	return out, nil
}

// metricResult is one metric's answer in one round.
type metricResult struct {
	res *metricsrc.Result
	err error
}

// queryMetrics runs every metric's query (and a missing baseline) in
// parallel; each is bounded by its source's timeout.
func (w *window) queryMetrics(ctx context.Context, wg *sync.WaitGroup, out []metricResult) {
	for i, m := range w.s.Metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := w.clients[m.Source]
			w.baseMu.Lock()
			missing := m.Baseline > 0 && w.st.baseline(m.Name) == nil
			w.baseMu.Unlock()
			if missing {
				w.measureBaseline(ctx, c, &m)
			}
			res, err := c.Query(ctx, m.Query, time.Time{})
			out[i] = metricResult{res, err}
		}()
	}
}

// measureBaseline averages the metric's query over the baseline period
// before the window started; on failure it is tried again next round.
func (w *window) measureBaseline(ctx context.Context, c *metricsrc.Client, m *metricSpec) {
	end := w.mark.Started
	res, err := c.Mean(ctx, m.Query, end.Add(-m.Baseline), end, max(w.s.Interval, 15*time.Second))
	w.baseMu.Lock()
	defer w.baseMu.Unlock()
	if err != nil {
		w.logf("metric %q: baseline not measured yet (tried again next interval): %v", m.Name, err)
		return
	}
	b := map[string]float64{}
	for _, s := range res.Series {
		b[s.Name] = s.Value
	}
	if len(b) == 0 {
		w.logf("metric %q: the query had no value in the %s before the window: relative bounds are not judged", m.Name, m.Baseline)
	} else {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(b)) {
			parts = append(parts, strings.TrimSpace(seriesText(k)+" "+metricsrc.Num(b[k])))
		}
		w.logf("metric %q: baseline over the %s before the window: %s", m.Name, m.Baseline, strings.Join(parts, ", "))
	}
	w.st.Baselines[m.Name] = b
}

func (st *state) baseline(name string) map[string]float64 {
	return st.Baselines[name]
}

// metricRecords turns one metric's answer into its records: one per series,
// or one without a series when there is no value at all.
func (w *window) metricRecords(ts time.Time, m *metricSpec, r metricResult) []*Record {
	rec := func(series string) *Record {
		return &Record{Type: RecordMetric, Node: w.node, TS: ts, Metric: m.Name, Series: series}
	}
	if r.err != nil {
		x := rec("")
		x.NoData = truncate(oneLine(r.err.Error()), 300)
		x.BadQuery = metricsrc.IsBadQuery(r.err)
		return []*Record{x}
	}
	if len(r.res.Series) == 0 {
		x := rec("")
		x.NoData = "empty result: the query matches no series (a metric or label name typo? no scrape yet?)"
		return []*Record{x}
	}
	base := w.st.baseline(m.Name)
	out := make([]*Record, 0, len(r.res.Series))
	for _, s := range r.res.Series {
		x := rec(s.Name)
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			x.NoData = fmt.Sprintf("the value is %s (0/0: no requests in the range?)", metricsrc.Num(s.Value))
		} else {
			v := s.Value
			x.Value = &v
		}
		if b, ok := base[s.Name]; ok {
			x.Baseline = &b
		} else if len(base) == 1 && len(r.res.Series) == 1 {
			for _, b := range base {
				x.Baseline = &b // one series before and now: the same, whatever its labels
			}
		}
		out = append(out, x)
	}
	return out
}

func fmtValue(f float64) string { return metricsrc.Num(f) }

func (s *settings) metricNames() []string {
	var out []string
	for _, m := range s.Metrics {
		out = append(out, m.Name)
	}
	return out
}

// metricBounds are the window record's metric_bounds: what a report draws.
func (s *settings) metricBounds() map[string]map[string]float64 {
	if len(s.Metrics) == 0 {
		return nil
	}
	out := map[string]map[string]float64{}
	for _, m := range s.Metrics {
		b := map[string]float64{}
		for name, v := range map[string]*float64{"max": m.Max, "min": m.Min, "max_increase_percent": m.MaxInc, "max_decrease_percent": m.MaxDec} {
			if v != nil {
				b[name] = *v
			}
		}
		if m.Baseline > 0 {
			b["baseline_seconds"] = m.Baseline.Seconds()
		}
		out[m.Name] = b
	}
	return out
}

// metricOutcome sums up one metric's records of an interval in a line.
func metricOutcome(recs []*Record) string {
	if len(recs) == 1 && recs[0].Series == "" {
		return "no data: " + truncate(recs[0].NoData, 160)
	}
	var (
		n, missing int
		hi         float64
		over       []string
	)
	for _, r := range recs {
		if r.Value == nil {
			missing++
		} else if n++; n == 1 || *r.Value > hi {
			hi = *r.Value
		}
		for _, o := range r.Over {
			if !contains(over, o) {
				over = append(over, o)
			}
		}
	}
	out := fmt.Sprintf("%d series", len(recs))
	if n > 0 {
		out += ", highest " + metricsrc.Num(hi)
	}
	if missing > 0 {
		out += fmt.Sprintf(", %d without a value", missing)
	}
	if len(over) > 0 {
		out += "; over: " + strings.Join(over, ", ")
	}
	return out
}
