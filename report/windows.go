package report

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/modules/observe"
)

// maxBuckets bounds the points drawn per chart: a 72 h window at 1-minute
// samples (4,320 per host) is drawn as at most 2 x 600 points, keeping each
// bucket's minimum and maximum so no spike disappears.
const maxBuckets = 600

// Window is one observation window of the run.
type Window struct {
	Node                     string
	Started, Deadline, Ended time.Time
	Interval, BreachFor      string
	Hosts                    []string
	Outcome, Reason          string
	Samples                  int
	Charts                   []*Chart
	byKey                    map[string]*Chart
	buckets                  int
	lastTS                   time.Time
}

// Chart is one metric on one host over the window.
type Chart struct {
	Host, Metric string // Metric as Record.Over names it: cpu, memory, load, disk /, log PATH, check NAME
	Unit         string
	Bound        *float64
	Buckets      []bucket
	Min, Max     float64
	Samples      int
	Breaches     int     // samples above the bound
	Deciding     *Sample // the sample that made the window fail
}

// Sample is one value of a chart.
type Sample struct {
	TS    time.Time
	Value float64
}

type bucket struct {
	N          int
	MinV, MaxV float64
	MinT, MaxT time.Time
	Over       bool
	OverT      time.Time
	OverV      float64
}

func (c *Chart) add(ts time.Time, v float64, over, deciding bool, i int) {
	if i < 0 {
		i = 0
	}
	if i >= len(c.Buckets) {
		i = len(c.Buckets) - 1
	}
	b := &c.Buckets[i]
	if b.N == 0 || v < b.MinV {
		b.MinV, b.MinT = v, ts
	}
	if b.N == 0 || v > b.MaxV {
		b.MaxV, b.MaxT = v, ts
	}
	b.N++
	if c.Samples == 0 || v < c.Min {
		c.Min = v
	}
	if c.Samples == 0 || v > c.Max {
		c.Max = v
	}
	c.Samples++
	if over {
		c.Breaches++
		if !b.Over || v > b.OverV {
			b.OverT, b.OverV = ts, v
		}
		b.Over = true
	}
	if deciding {
		c.Deciding = &Sample{TS: ts, Value: v}
	}
}

// windows streams metrics.jsonl into per-window charts; memory depends on
// windows, hosts and metrics, not on the number of samples.
func (r *Report) windows(path string, now time.Time) error {
	byNode := map[string]*Window{}
	bounds := map[string]map[string]float64{}
	metricBounds := map[string]map[string]map[string]float64{}
	err := observe.ReadRecords(path, func(rec *observe.Record) error {
		w := byNode[rec.Node]
		switch rec.Type {
		case observe.RecordWindow:
			if w == nil || !rec.Resumed {
				// a new window of this node (a retry) starts the charts over
				w = &Window{Node: rec.Node, Started: rec.TS, byKey: map[string]*Chart{}}
				byNode[rec.Node] = w
			}
			if rec.Deadline != nil {
				w.Deadline = *rec.Deadline
			}
			w.Interval, w.Hosts, w.BreachFor = rec.Interval, rec.Hosts, rec.BreachFor
			w.Outcome, w.Reason = "", ""
			if rec.Bounds != nil {
				bounds[rec.Node] = rec.Bounds
			}
			if rec.MetricBounds != nil {
				metricBounds[rec.Node] = rec.MetricBounds
			}
			w.buckets = maxBuckets
			if iv, err := time.ParseDuration(rec.Interval); err == nil && iv > 0 && !w.Deadline.IsZero() {
				if n := int(w.Deadline.Sub(w.Started)/iv) + 1; n < w.buckets {
					w.buckets = n
				}
			}
			if w.buckets < 1 {
				w.buckets = 1
			}
		case observe.RecordSample:
			if w == nil {
				return nil // a sample before its window line: foreign or torn
			}
			w.sample(rec, bounds[rec.Node])
		case observe.RecordMetric:
			if w == nil || rec.Value == nil {
				return nil
			}
			w.metric(rec, metricBounds[rec.Node][rec.Metric])
		case observe.RecordEnd:
			if w != nil {
				w.Outcome, w.Reason, w.Ended = rec.Outcome, rec.Reason, rec.TS
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range byNode {
		sort.SliceStable(w.Charts, func(i, j int) bool {
			if w.Charts[i].Host != w.Charts[j].Host {
				return hostRank(w, w.Charts[i].Host) < hostRank(w, w.Charts[j].Host)
			}
			return metricRank(w.Charts[i].Metric) < metricRank(w.Charts[j].Metric)
		})
		r.Windows = append(r.Windows, w)
	}
	sort.Slice(r.Windows, func(i, j int) bool { return r.Windows[i].Started.Before(r.Windows[j].Started) })
	return nil
}

// End is where the window's charts end: the deadline, or the last sample
// when it ended earlier.
func (w *Window) End() time.Time {
	if w.Outcome != "" && !w.Ended.IsZero() && (w.Deadline.IsZero() || w.Ended.Before(w.Deadline)) {
		return w.Ended
	}
	if w.Deadline.IsZero() {
		return w.lastTS
	}
	return w.Deadline
}

func (w *Window) sample(rec *observe.Record, bounds map[string]float64) {
	w.Samples++
	if rec.TS.After(w.lastTS) {
		w.lastTS = rec.TS
	}
	over := map[string]bool{}
	for _, o := range rec.Over {
		over[o] = true
	}
	idx := 0
	if span := w.Deadline.Sub(w.Started); span > 0 {
		idx = int(float64(rec.TS.Sub(w.Started)) / float64(span) * float64(w.buckets))
	}
	put := func(metric, boundKey, unit string, v float64) {
		key := rec.Host + "\x00" + metric
		c := w.byKey[key]
		if c == nil {
			c = &Chart{Host: rec.Host, Metric: metric, Unit: unit, Buckets: make([]bucket, w.buckets)}
			if b, ok := bounds[boundKey]; ok {
				c.Bound = &b
			}
			w.byKey[key] = c
			w.Charts = append(w.Charts, c)
		}
		c.add(rec.TS, v, over[metric], rec.Deciding && over[metric], idx)
	}
	if rec.CPU != nil {
		put("cpu", "cpu", "%", *rec.CPU)
	}
	if rec.Mem != nil {
		put("memory", "memory", "%", *rec.Mem)
	}
	if rec.Load != nil {
		put("load", "load", "", *rec.Load)
	}
	for _, p := range slices.Sorted(maps.Keys(rec.Disk)) {
		put("disk "+p, "disk", "%", rec.Disk[p])
	}
	for _, l := range slices.Sorted(maps.Keys(rec.LogMatches)) {
		put("log "+l, "log "+l, "matches", float64(rec.LogMatches[l]))
	}
	// Check failures are the same in every host's line: chart them once.
	if len(w.Hosts) == 0 || rec.Host == w.Hosts[0] {
		for _, c := range slices.Sorted(maps.Keys(rec.CheckFailures)) {
			h := rec.Host
			rec.Host = ""
			put("check "+c, "", "failures", float64(rec.CheckFailures[c]))
			rec.Host = h
		}
	}
}

// metric charts one series of a Prometheus metric block; its bound is the
// absolute max (or min), else the latest baseline's relative limit.
func (w *Window) metric(rec *observe.Record, bounds map[string]float64) {
	w.Samples++
	if rec.TS.After(w.lastTS) {
		w.lastTS = rec.TS
	}
	series := rec.Series
	if series == "{}" {
		series = ""
	}
	key := series + "\x00metric " + rec.Metric
	c := w.byKey[key]
	if c == nil {
		c = &Chart{Host: series, Metric: "metric " + rec.Metric, Buckets: make([]bucket, w.buckets)}
		w.byKey[key] = c
		w.Charts = append(w.Charts, c)
	}
	var limit *float64
	if b, ok := bounds["max"]; ok {
		limit = &b
	} else if b, ok := bounds["min"]; ok {
		limit = &b
	} else if p, ok := bounds["max_increase_percent"]; ok && rec.Baseline != nil {
		v := *rec.Baseline * (1 + p/100)
		limit = &v
	}
	if limit != nil {
		c.Bound = limit
	}
	idx := 0
	if span := w.Deadline.Sub(w.Started); span > 0 {
		idx = int(float64(rec.TS.Sub(w.Started)) / float64(span) * float64(w.buckets))
	}
	c.add(rec.TS, *rec.Value, len(rec.Over) > 0, rec.Deciding, idx)
}

func hostRank(w *Window, h string) int {
	for i, x := range w.Hosts {
		if x == h {
			return i
		}
	}
	return len(w.Hosts)
}

func metricRank(m string) int {
	for i, p := range []string{"cpu", "memory", "load", "disk", "log", "check", "metric"} {
		if m == p || strings.HasPrefix(m, p+" ") {
			return i
		}
	}
	return 99
}
