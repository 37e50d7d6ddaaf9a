package observe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/upgrader-dev/upgrader/modules"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// MetricsFile is where a run's observation samples go, relative to the state directory.
func MetricsFile(stateDir, run string) string {
	return filepath.Join(stateDir, "runs", run, "metrics.jsonl")
}

// Record types in metrics.jsonl.
const (
	RecordWindow = "window" // a window started or resumed
	RecordSample = "sample" // one host, one interval
	RecordMetric = "metric" // one metric block's series, one interval
	RecordEnd    = "end"    // a window ended
)

// Record is one line of metrics.jsonl. Lines of every observe node of the
// run are interleaved; Node tells them apart.
type Record struct {
	Type string    `json:"type"`
	Node string    `json:"node"`
	TS   time.Time `json:"ts"`

	// window
	Deadline *time.Time `json:"deadline,omitempty"`
	Interval string     `json:"interval,omitempty"`
	Hosts    []string   `json:"hosts,omitempty"`
	Resumed  bool       `json:"resumed,omitempty"`
	// Bounds: the window's limits by the names Over uses ("cpu", "memory",
	// "disk", "load", "log PATH"), so a report can draw them without the configuration.
	Bounds    map[string]float64 `json:"bounds,omitempty"`
	BreachFor string             `json:"breach_for,omitempty"`
	// MetricNames: the window's metric blocks; MetricBounds: each one's
	// bounds by the names its records' Over uses ("max", "min",
	// "max_increase_percent", "max_decrease_percent") and "baseline_seconds".
	MetricNames  []string                      `json:"metrics,omitempty"`
	MetricBounds map[string]map[string]float64 `json:"metric_bounds,omitempty"`

	// sample; Host is "" for the one line of a window without hosts.
	Host string   `json:"host,omitempty"`
	CPU  *float64 `json:"cpu,omitempty"`  // busy % since the previous sample (absent on the first)
	Mem  *float64 `json:"mem,omitempty"`  // used % (MemTotal - MemAvailable)
	Load *float64 `json:"load,omitempty"` // 1-minute load average
	// Disk: watched path -> used % of the filesystem holding it.
	Disk map[string]float64 `json:"disk,omitempty"`
	// LogMatches: log -> matching lines since the window started; LogLines:
	// the matching lines read in this interval (trimmed, the last few).
	// A log is named by its path, or "PATH#N" when several log blocks
	// follow the same path (N: the block's position, from 0).
	LogMatches map[string]int      `json:"log_matches,omitempty"`
	LogLines   map[string][]string `json:"log_lines,omitempty"`
	// CheckFailures: check -> consecutive failed intervals (0: passed).
	CheckFailures map[string]int `json:"check_failures,omitempty"`
	// CheckErrors: check -> its error in this interval (trimmed).
	CheckErrors map[string]string `json:"check_errors,omitempty"`
	// Unreachable: consecutive intervals this host could not be sampled.
	Unreachable int    `json:"unreachable,omitempty"`
	Error       string `json:"error,omitempty"`
	// Over: the bounds this sample is above ("cpu", "mem", "load", "disk /").
	Over []string `json:"over,omitempty"`
	// Deciding: this sample made the window fail (a bound breached long enough).
	Deciding bool `json:"deciding,omitempty"`

	// metric: a metric block's value for one series in one interval.
	// Series is the series' labels as PromQL writes them ("{}" when it has
	// none; "" when the query gave no value at all: NoData says why).
	Metric   string   `json:"metric,omitempty"`
	Series   string   `json:"series,omitempty"`
	Value    *float64 `json:"value,omitempty"`
	Baseline *float64 `json:"baseline,omitempty"`
	NoData   string   `json:"no_data,omitempty"`
	BadQuery bool     `json:"bad_query,omitempty"` // Prometheus refused the query: fails at once

	// end; also "window" says judged when the deadline passed while upgrader was down.
	Outcome string `json:"outcome,omitempty"` // passed | approved | failed | judged_passed | judged_failed
	Reason  string `json:"reason,omitempty"`
}

// metricsWriter appends records to the run's samples (Env.AppendSamples):
// each call is one append, all or nothing, so a crash leaves at most one
// torn line at the end, which readers skip.
type metricsWriter struct {
	env modules.Env
	buf bytes.Buffer
}

func openMetrics(env modules.Env) *metricsWriter { return &metricsWriter{env: env} }

func (m *metricsWriter) write(recs ...*Record) error {
	m.buf.Reset()
	enc := json.NewEncoder(&m.buf)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return m.env.AppendSamples(m.buf.Bytes())
}

func (m *metricsWriter) Close() error { return nil }

// Lines streams observation records as JSON lines to fn, in order: a
// run store's samples (runstore.Store.Samples) or a metrics.jsonl (FileLines).
type Lines func(fn func(line []byte) error) error

// ReadRecords streams the records of path to fn in file order, skipping
// torn or foreign lines. A missing file has no records.
func ReadRecords(path string, fn func(*Record) error) error {
	return ReadRecordsFrom(FileLines(path), fn)
}

// ReadRecordsFrom is ReadRecords over lines.
func ReadRecordsFrom(lines Lines, fn func(*Record) error) error {
	return lines(func(line []byte) error {
		var r Record
		if json.Unmarshal(line, &r) == nil && r.Type != "" && r.Node != "" {
			return fn(&r)
		}
		return nil
	})
}

// FileLines streams the complete, non-blank lines of path (a missing file
// has none; a torn last line is skipped).
func FileLines(path string) Lines {
	return func(fn func(line []byte) error) error { return modules.ReadLines(path, fn) }
}

// WindowSummary is what `upgrader status` shows of one observation window.
type WindowSummary struct {
	Node     string    `json:"node"`
	Started  time.Time `json:"started"` // first window record
	Deadline time.Time `json:"deadline"`
	Interval string    `json:"interval,omitempty"`
	Hosts    []string  `json:"hosts,omitempty"`
	Samples  int       `json:"samples"`
	// Latest sample per host ("" for a window without hosts).
	Latest map[string]*Record `json:"latest,omitempty"`
	// LatestMetrics: the latest metric record per "NAME SERIES" ("NAME" when
	// the query had no value).
	LatestMetrics map[string]*Record `json:"latest_metrics,omitempty"`
	// Breaches counts, per "HOST BOUND", the samples above the bound
	// (whether or not they lasted breach_for); LastBreach is the latest such sample.
	Breaches   map[string]int     `json:"breaches,omitempty"`
	LastBreach map[string]*Record `json:"last_breach,omitempty"`
	Outcome    string             `json:"outcome,omitempty"` // "" while open
	Reason     string             `json:"reason,omitempty"`
	Ended      time.Time          `json:"ended,omitzero"`
}

// Open reports whether the window has not ended.
func (w *WindowSummary) Open() bool { return w.Outcome == "" }

// Summarize reads a run's metrics.jsonl (MetricsFile) and returns each
// window's summary, ordered by node. Memory depends on the number of
// windows and hosts, not on the number of samples.
func Summarize(path string) ([]*WindowSummary, error) {
	return SummarizeFrom(FileLines(path))
}

// SummarizeFrom is Summarize over lines (a run store's samples).
//
// A 72 h window at 1 min on 10 hosts is 43,200 sample lines, and decoding
// each costs a second: a sample line as this package writes it (fields in
// Record's order) is only counted and remembered as its host's latest, and
// decoded once at the end; lines that do not have that shape, other
// records and samples above a bound are decoded in full.
func SummarizeFrom(lines Lines) ([]*WindowSummary, error) {
	byNode := map[string]*WindowSummary{}
	type key struct{ node, host string }
	latest := map[key][]byte{} // raw latest sample per node and host, not yet in Latest
	flush := func() error {
		for k, raw := range latest {
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			byNode[k.node].Latest[k.host] = &r
			delete(latest, k)
		}
		return nil
	}
	err := lines(func(line []byte) error {
		if node, host, ok := plainSample(line); ok {
			w := byNode[node]
			if w != nil {
				w.Samples++
				latest[key{node, host}] = append(latest[key{node, host}][:0], line...)
				return nil
			}
		}
		var r Record
		if json.Unmarshal(line, &r) != nil || r.Type == "" || r.Node == "" {
			return nil
		}
		if r.Type == RecordWindow && !r.Resumed {
			for k := range latest { // a new window of this node starts over
				if k.node == r.Node {
					delete(latest, k)
				}
			}
		}
		if r.Type == RecordSample {
			delete(latest, key{r.Node, r.Host})
		}
		return summarizeRecord(byNode, &r)
	})
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	out := make([]*WindowSummary, 0, len(byNode))
	for _, w := range byNode {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

var (
	samplePrefix = []byte(`{"type":"sample","node":"`)
	tsField      = []byte(`","ts":"`)
	hostField    = []byte(`,"host":"`)
	overField    = []byte(`"over":`)
)

// plainSample recognises a sample line with no bound exceeded, as Record
// encodes (type, node, ts, then host when there is one), and returns its
// node and host without decoding it.
func plainSample(line []byte) (node, host string, ok bool) {
	if !bytes.HasPrefix(line, samplePrefix) || bytes.Contains(line, overField) {
		return "", "", false
	}
	rest := line[len(samplePrefix):]
	i := bytes.Index(rest, tsField)
	if i <= 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return "", "", false
	}
	node = string(rest[:i])
	rest = rest[i+len(tsField):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", "", false
	}
	rest = rest[j+1:]
	if bytes.HasPrefix(rest, hostField) {
		rest = rest[len(hostField):]
		k := bytes.IndexByte(rest, '"')
		if k < 0 || bytes.IndexByte(rest[:k], '\\') >= 0 {
			return "", "", false
		}
		host = string(rest[:k])
	}
	return node, host, true
}

// summarizeRecord folds one decoded record into its window's summary.
func summarizeRecord(byNode map[string]*WindowSummary, r *Record) error {
	w := byNode[r.Node]
	if w == nil {
		w = &WindowSummary{Node: r.Node, Latest: map[string]*Record{}, Breaches: map[string]int{}, LastBreach: map[string]*Record{}}
		byNode[r.Node] = w
	}
	switch r.Type {
	case RecordWindow:
		if !r.Resumed {
			// A new window of this node (a retry): the summary starts over.
			*w = WindowSummary{Node: r.Node, Started: r.TS, Latest: map[string]*Record{}, Breaches: map[string]int{}, LastBreach: map[string]*Record{}}
		}
		if r.Deadline != nil {
			w.Deadline = *r.Deadline
		}
		w.Interval, w.Hosts = r.Interval, r.Hosts
		w.Outcome, w.Reason = "", "" // a resumed window is open again
	case RecordSample, RecordMetric:
		w.Samples++
		who := r.Host
		if r.Type == RecordMetric {
			who = "metric " + r.Metric + seriesText(r.Series)
			if w.LatestMetrics == nil {
				w.LatestMetrics = map[string]*Record{}
			}
			if r.Series == "" {
				// No value at all this interval: it stands for every series.
				for k := range w.LatestMetrics {
					if w.LatestMetrics[k].Metric == r.Metric {
						delete(w.LatestMetrics, k)
					}
				}
			} else {
				delete(w.LatestMetrics, r.Metric)
			}
			w.LatestMetrics[strings.TrimSpace(r.Metric+" "+r.Series)] = r
		} else {
			w.Latest[r.Host] = r
		}
		for _, b := range r.Over {
			k := strings.TrimSpace(who + " " + b)
			w.Breaches[k]++
			w.LastBreach[k] = r
		}
	case RecordEnd:
		w.Outcome, w.Reason, w.Ended = r.Outcome, r.Reason, r.TS
	}
	return nil
}

// Text renders the summary for a terminal, as of now.
func (w *WindowSummary) Text(now time.Time) string {
	var b strings.Builder
	switch {
	case w.Open() && !w.Deadline.IsZero():
		left := w.Deadline.Sub(now).Round(time.Second)
		if left < 0 {
			fmt.Fprintf(&b, "%s: open, deadline %s passed %s ago (upgrader not running? `upgrader resume` judges it)", w.Node, w.Deadline.UTC().Format(time.RFC3339), (-left).String())
		} else {
			fmt.Fprintf(&b, "%s: open, %s left (until %s)", w.Node, left, w.Deadline.UTC().Format(time.RFC3339))
		}
	case w.Open():
		fmt.Fprintf(&b, "%s: open", w.Node)
	default:
		fmt.Fprintf(&b, "%s: %s at %s", w.Node, strings.ReplaceAll(w.Outcome, "_", " "), w.Ended.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ", %d samples", w.Samples)
	if w.Interval != "" {
		fmt.Fprintf(&b, " every %s", w.Interval)
	}
	b.WriteByte('\n')
	if w.Reason != "" {
		for _, l := range strings.Split(w.Reason, "\n") {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(w.Latest)) {
		r := w.Latest[h]
		name := h
		if name == "" {
			name = "(checks)"
		}
		fmt.Fprintf(&b, "  %-12s %s  %s\n", name, r.TS.UTC().Format("15:04:05"), r.Metrics())
	}
	for _, k := range slices.Sorted(maps.Keys(w.LatestMetrics)) {
		r := w.LatestMetrics[k]
		fmt.Fprintf(&b, "  metric %s  %s  %s\n", k, r.TS.UTC().Format("15:04:05"), r.Metrics())
	}
	for _, k := range slices.Sorted(maps.Keys(w.Breaches)) {
		r := w.LastBreach[k]
		fmt.Fprintf(&b, "  breach: %s above its bound in %d sample(s), last at %s (%s)\n", k, w.Breaches[k], r.TS.UTC().Format("15:04:05"), r.Metrics())
	}
	return b.String()
}

// Metrics renders a sample's values on one line.
func (r *Record) Metrics() string {
	var p []string
	if r.Type == RecordMetric {
		if r.Value != nil {
			p = append(p, fmtValue(*r.Value))
		} else {
			p = append(p, "no data: "+r.NoData)
		}
		if r.Baseline != nil {
			p = append(p, "baseline "+fmtValue(*r.Baseline))
		}
		return strings.Join(p, "  ")
	}
	if r.Error != "" {
		p = append(p, "error: "+r.Error)
	}
	if r.CPU != nil {
		p = append(p, fmt.Sprintf("cpu %.1f%%", *r.CPU))
	}
	if r.Mem != nil {
		p = append(p, fmt.Sprintf("mem %.1f%%", *r.Mem))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Disk)) {
		p = append(p, fmt.Sprintf("disk %s %.1f%%", k, r.Disk[k]))
	}
	if r.Load != nil {
		p = append(p, fmt.Sprintf("load %.2f", *r.Load))
	}
	for _, k := range slices.Sorted(maps.Keys(r.LogMatches)) {
		p = append(p, fmt.Sprintf("%s %d match(es)", k, r.LogMatches[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.CheckFailures)) {
		if n := r.CheckFailures[k]; n > 0 {
			p = append(p, fmt.Sprintf("check %s failed %dx", k, n))
		}
	}
	if len(p) == 0 {
		return "(no values)"
	}
	return strings.Join(p, "  ")
}
