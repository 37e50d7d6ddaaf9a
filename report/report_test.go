package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testbrowser"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// longRun writes the journal and metrics.jsonl of a run whose 72 h window
// (1-minute samples, hosts) failed at its end on host h0's CPU: one spike
// of 99% at sample spikeAt, and a breach in the last samples.
func longRun(t testing.TB, hosts int) (stateDir, run string) {
	t.Helper()
	stateDir = t.TempDir()
	run = "20261201T000000-abcd"
	dir := journal.RunDir(stateDir, run)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	deadline := start.Add(72 * time.Hour)
	var hs []string
	for i := 0; i < hosts; i++ {
		hs = append(hs, fmt.Sprintf("h%d", i))
	}
	var j bytes.Buffer
	ev := func(ts time.Time, typ, node string, data any) {
		e := map[string]any{"ts": ts, "type": typ}
		if node != "" {
			e["node"] = node
		}
		if data != nil {
			e["data"] = data
		}
		b, _ := json.Marshal(e)
		j.Write(append(b, '\n'))
	}
	ev(start, "run_started", "", map[string]any{"run": run, "config_hash": "abc123", "vars": map[string]string{"version": "\"2.4.0\""}, "by": "alice@ops1"})
	ev(start, "node_started", "observe.soak", map[string]any{"kind": "observe", "phase": "standby", "hosts": hs})
	end := deadline.Add(-10 * time.Minute)
	ev(end, "node_failed", "observe.soak", map[string]any{"error": "observe.soak: observation window failed: cpu"})
	ev(end.Add(time.Second), "undo_started", "observe.soak", nil)
	ev(end.Add(2*time.Second), "undo_finished", "observe.soak", nil)
	ev(end.Add(3*time.Second), "run_finished", "", map[string]any{"outcome": "rolled_back"})
	if err := os.WriteFile(journal.Path(stateDir, run), j.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	f, err := os.Create(observe.MetricsFile(stateDir, run))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.Encode(&observe.Record{Type: observe.RecordWindow, Node: "observe.soak", TS: start, Deadline: &deadline, Interval: "1m0s", Hosts: hs,
		Bounds: map[string]float64{"cpu": 85, "memory": 90, "disk": 90, "log /var/log/app.log": 0}, BreachFor: "5m0s",
		MetricNames: []string{"error_ratio"}, MetricBounds: map[string]map[string]float64{"error_ratio": {"max": 0.01}}})
	f64 := func(v float64) *float64 { return &v }
	n := 0
	for ts := start.Add(time.Minute); !ts.After(end); ts = ts.Add(time.Minute) {
		n++
		for i, h := range hs {
			cpu := 20 + float64((n*7+i*13)%30)
			r := &observe.Record{Type: observe.RecordSample, Node: "observe.soak", TS: ts, Host: h, CPU: f64(cpu), Mem: f64(40 + float64(n%10)),
				Load: f64(0.5), Disk: map[string]float64{"/": 55}, LogMatches: map[string]int{"/var/log/app.log": 0}}
			if i == 0 && n == spikeAt {
				r.CPU = f64(99)
				r.Over = []string{"cpu"}
			}
			if i == 0 && !ts.Before(end.Add(-5*time.Minute)) {
				r.CPU = f64(97)
				r.Over = []string{"cpu"}
				r.Deciding = ts.Equal(end)
			}
			enc.Encode(r)
		}
		enc.Encode(&observe.Record{Type: observe.RecordMetric, Node: "observe.soak", TS: ts, Metric: "error_ratio", Series: "{}", Value: f64(0.001 * float64(n%5))})
	}
	enc.Encode(&observe.Record{Type: observe.RecordEnd, Node: "observe.soak", TS: end, Outcome: "failed", Reason: "host \"h0\": cpu 97% is above max_cpu_percent 85%"})
	return stateDir, run
}

const spikeAt = 1234

var pointRe = regexp.MustCompile(`[ML]([0-9.]+),([0-9.]+)`)

// A 72 h window at 1-minute samples is drawn with at most 2 points per
// bucket, and a single-sample spike is still drawn at its height.
func TestWindow_downsampleKeepsSpike(t *testing.T) {
	stateDir, run := longRun(t, 1)
	rep, err := Build(Input{StateDir: stateDir, Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 1 {
		t.Fatalf("%d windows", len(rep.Windows))
	}
	w := rep.Windows[0]
	var cpu *Chart
	for _, c := range w.Charts {
		if c.Metric == "cpu" {
			cpu = c
		}
	}
	if cpu == nil || cpu.Samples != 4310 || cpu.Max != 99 || cpu.Deciding == nil || cpu.Deciding.Value != 97 {
		t.Fatalf("cpu chart: %+v", cpu)
	}
	g := w.chartSVG(cpu)
	pts := pointRe.FindAllStringSubmatch(g.Path, -1)
	if len(pts) > 2*maxBuckets || len(pts) < maxBuckets {
		t.Errorf("%d points drawn for 4310 samples, want between %d and %d", len(pts), maxBuckets, 2*maxBuckets)
	}
	// y of 99 on this chart
	hi := 100.0 // a % chart whose values stay under 100 ends at 100
	want := fmt.Sprintf("%g", round1(float64(g.PlotY1)-99/hi*(g.PlotY1-g.PlotY0)))
	found := false
	for _, p := range pts {
		if p[2] == want {
			found = true
		}
	}
	if !found {
		t.Errorf("the 99%% spike (y=%s) is not drawn", want)
	}
	if len(g.Breaches) < 2 || g.Deciding == nil || !strings.Contains(g.DecidingText, "97%") {
		t.Errorf("breaches %d, deciding %+v %q", len(g.Breaches), g.Deciding, g.DecidingText)
	}
}

// The 72 h window of 3 hosts opens in a real Chromium without errors, one
// series per metric and host, and loads quickly (the time is logged).
func TestHTML_72hWindowInChromium(t *testing.T) {
	stateDir, run := longRun(t, 3)
	path, err := Write(Input{StateDir: stateDir, Run: run}, "")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	p := testbrowser.Open(t, path)
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// cpu, memory, load, disk /, log: 5 metrics on 3 hosts, and the Prometheus metric
	if n := p.Count(".chart path.series"); n != 16 {
		t.Errorf("%d series, want 16", n)
	}
	if n := p.Count(`.chart[data-title="metric error_ratio"] line.bound`); n != 1 {
		t.Errorf("the Prometheus metric's chart has %d bound lines, want 1", n)
	}
	if n := p.Count(".chart circle.deciding"); n != 1 {
		t.Errorf("%d deciding samples, want 1", n)
	}
	if n := p.Count(`.chart[data-title="cpu on h0"] circle.breach`); n < 2 {
		t.Errorf("%d breach markers on h0's cpu, want the spike and the final breach", n)
	}
	if n := p.Count("#timeline rect.bar"); n != 2 {
		t.Errorf("%d timeline bars, want the window and its undo", n)
	}
	d := p.LoadTime()
	t.Logf("72 h window, 3 hosts x 4310 samples: report %d KiB, loaded in Chromium in %s", st.Size()>>10, d)
	p.Screenshot("report-72h.png")
	if d > 5*time.Second { // the target is < 1 s (BENCHMARKS.md); this only catches a page that stopped being downsampled
		t.Errorf("the page took %s to load", d)
	}
}

func BenchmarkReport_72hWindow10Hosts(b *testing.B) {
	stateDir, run := longRun(b, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Build(Input{StateDir: stateDir, Run: run})
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := rep.HTML(&buf); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
}

func TestBuild_missingRun(t *testing.T) {
	if _, err := Build(Input{StateDir: t.TempDir(), Run: "20261201T000000-abcd"}); err == nil {
		t.Error("no error for a run that does not exist")
	}
}

// A run still going (its lock held by a live process) is reported as a
// snapshot: state running, its open node's bar reaching the snapshot's time.
func TestBuild_runningSnapshot(t *testing.T) {
	stateDir, run := longRun(t, 1)
	// cut the journal before the window failed: the window is still open
	b, err := os.ReadFile(journal.Path(stateDir, run))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(journal.Path(stateDir, run), bytes.Join(lines[:2], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	lock, err := journal.Acquire(stateDir, run)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	rep, err := Build(Input{StateDir: stateDir, Run: run, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status.State != "running" {
		t.Fatalf("state %s, want running", rep.Status.State)
	}
	var row *Row
	for _, r := range rep.Rows {
		if r.Node == "observe.soak" {
			row = r
		}
	}
	if row == nil || row.Run == nil || !row.Run.Open || !row.Run.End.Equal(now) {
		t.Fatalf("the open window's bar: %+v", row)
	}
	var out bytes.Buffer
	if err := rep.HTML(&out); err != nil || !strings.Contains(out.String(), "a snapshot taken") || !strings.Contains(out.String(), "still going") {
		t.Errorf("the page does not say it is a snapshot (%v)", err)
	}
}
