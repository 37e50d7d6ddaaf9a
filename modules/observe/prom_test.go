package observe

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upgrader-dev/upgrader/internal/testprom"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// promApp is a service a real Prometheus scrapes: it counts requests by
// status code at a steady rate, errPerMille of them 500s.
type promApp struct {
	addr        string
	errPerMille atomic.Int64
	stop        chan struct{}
	wg          sync.WaitGroup
}

func newPromApp(t testing.TB, errPerMille int64) *promApp {
	t.Helper()
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "app_requests_total", Help: "requests by code"}, []string{"code"})
	reg.MustRegister(reqs)
	a := &promApp{addr: testprom.Exporter(t, reg), stop: make(chan struct{})}
	a.errPerMille.Store(errPerMille)
	a.wg.Add(1)
	go func() { // 1000 requests every 100 ms
		defer a.wg.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tk.C:
			}
			e := a.errPerMille.Load()
			reqs.WithLabelValues("500").Add(float64(e))
			reqs.WithLabelValues("200").Add(float64(1000 - e))
		}
	}()
	t.Cleanup(func() { close(a.stop); a.wg.Wait() })
	return a
}

// promWindow is an observe node with metric blocks only, against a real
// Prometheus scraping a promApp every 250 ms.
type promWindow struct {
	app  *promApp
	prom *testprom.Server
	env  *modtest.Env
	out  strings.Builder
}

func newPromWindow(t *testing.T, errPerMille int64, history time.Duration) *promWindow {
	t.Helper()
	w := &promWindow{app: newPromApp(t, errPerMille)}
	w.prom = testprom.New(t, testprom.Options{Targets: []string{w.app.addr}, ScrapeInterval: 250 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.prom.WaitScraped(ctx, []string{w.app.addr}, int(history/(250*time.Millisecond))+2); err != nil {
		t.Fatal(err)
	}
	w.env = &modtest.Env{ID: "run1", Dir: t.TempDir(), Targets: map[string]modules.Target{},
		MetricSources: map[string]*modules.MetricSource{"prom": {Name: "prom", Kind: "prometheus", URL: w.prom.URL, Timeout: time.Second,
			Headers: map[string]string{"Authorization": "Bearer hunter2-token"}}}}
	return w
}

func (w *promWindow) apply(t *testing.T, body string) (*modules.Outcome, error) {
	t.Helper()
	cfg, _ := mustSettings(t, "observe \"users\" {\n"+body+"\n}\n", nil, nil)
	return New().Apply(context.Background(), &modules.Request{Config: cfg, Node: "observe.users", Index: -1, Env: w.env, Log: &syncWriter{b: &w.out}})
}

func (w *promWindow) records(t *testing.T) []*Record {
	var out []*Record
	if err := ReadRecords(MetricsFile(w.env.Dir, w.env.ID), func(r *Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

const ratioQuery = `sum(rate(app_requests_total{code=~"5.."}[1s])) / sum(rate(app_requests_total[1s]))`

// The error ratio goes from 0.5% (the baseline) to 5% during the window:
// the absolute bound holds (max 0.1), the relative one (+50%) does not.
func TestPromWindow_errorRatioAboveBaseline(t *testing.T) {
	t.Parallel()
	w := newPromWindow(t, 5, 3*time.Second)
	time.AfterFunc(time.Second, func() { w.app.errPerMille.Store(50) })
	start := time.Now()
	_, err := w.apply(t, `
  duration = "20s"
  interval = "500ms"
  metric "error_ratio" {
    source               = metric_source.prom
    query                = "`+strings.ReplaceAll(ratioQuery, `"`, `\"`)+`"
    max                  = 0.1
    max_increase_percent = 50
    baseline             = "2s"
    breach_for           = "1s"
    on_no_data           = "fail"
  }`)
	if err == nil {
		t.Fatalf("the window passed:\n%s", w.out.String())
	}
	msg := err.Error()
	for _, want := range []string{`metric "error_ratio": 0.05 is`, "above its baseline 0.005", "max_increase_percent 50 allows up to 0.0075", "breach_for 1s", "query: " + ratioQuery} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure lacks %q:\n%s", want, msg)
		}
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the breach took %v to be seen", took)
	}
	recs := w.records(t)
	var metrics, over int
	for _, r := range recs {
		if r.Type == RecordMetric {
			metrics++
			if r.Baseline == nil || *r.Baseline < 0.004 || *r.Baseline > 0.006 {
				t.Errorf("record without the baseline 0.005: %+v", r)
			}
			if len(r.Over) > 0 {
				over++
			}
		}
	}
	if metrics < 3 || over < 2 || recs[len(recs)-1].Outcome != "failed" {
		t.Errorf("%d metric records, %d over, last %+v", metrics, over, recs[len(recs)-1])
	}
	if strings.Contains(w.out.String()+msg, "hunter2") {
		t.Error("a header value reached the output")
	}
	t.Logf("%s", msg)
}

// Prometheus stops answering mid-window (first hung, then down): with
// on_no_data = "inconclusive" the window fails once that lasts breach_for,
// without waiting on the hung server, and every interval is on record.
func TestPromWindow_prometheusDown(t *testing.T) {
	t.Parallel()
	w := newPromWindow(t, 0, 0)
	time.AfterFunc(1500*time.Millisecond, func() { w.prom.Pause() })
	time.AfterFunc(4*time.Second, func() { w.prom.Down() })
	start := time.Now()
	_, err := w.apply(t, `
  duration   = "60s"
  interval   = "500ms"
  breach_for = "5s"
  metric "errors" {
    source = metric_source.prom
    query  = "sum(rate(app_requests_total{code=\"500\"}[1s]))"
    max    = 10
  }`)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), `metric "errors": no data (on_no_data = "inconclusive") since`) {
		t.Fatalf("err = %v\n%s", err, w.out.String())
	}
	if took > 15*time.Second {
		t.Errorf("took %v: a hung Prometheus held the window", took)
	}
	var timeouts, refused, values int
	for _, r := range w.records(t) {
		switch {
		case r.Type != RecordMetric:
		case strings.Contains(r.NoData, "timeout"):
			timeouts++
		case strings.Contains(r.NoData, "not reachable"):
			refused++
		case r.Value != nil:
			values++
		}
	}
	if timeouts == 0 || refused == 0 || values == 0 {
		t.Errorf("records: %d values, %d timeouts, %d refused; want each", values, timeouts, refused)
	}
	// The checkpoint (journaled every interval) says what the last one saw.
	st := newState()
	if ok, err := w.env.Recall("observe.users"+keyState, st); !ok || err != nil || !strings.HasPrefix(st.Metrics["errors"], `no data: metric_source "prom": not reachable`) {
		t.Errorf("checkpointed state: %v %v %q", ok, err, st.Metrics)
	}
	t.Logf("failed after %v: %v", took.Round(100*time.Millisecond), err)
}

// on_no_data = "pass": Prometheus down the whole time, the window passes.
func TestPromWindow_noDataPass(t *testing.T) {
	t.Parallel()
	w := newPromWindow(t, 0, 0)
	w.prom.Down()
	out, err := w.apply(t, `
  duration = "2s"
  interval = "500ms"
  metric "errors" {
    source     = metric_source.prom
    query      = "sum(rate(app_requests_total{code=\"500\"}[1s]))"
    max        = 10
    on_no_data = "pass"
  }`)
	if err != nil || out.Outputs["passed"].True() != true {
		t.Fatalf("out %+v, err %v", out, err)
	}
}

// Plan: the current value, and each bad input as a clear message.
func TestPromPlan_probesTheSource(t *testing.T) {
	t.Parallel()
	w := newPromWindow(t, 20, 2*time.Second)
	plan := func(metric string) (*modules.Plan, error) {
		cfg, _ := mustSettings(t, "observe \"users\" {\n  duration = \"1h\"\n"+metric+"\n}\n", nil, nil)
		return New().Plan(context.Background(), &modules.Request{Config: cfg, Node: "observe.users", Index: -1, Env: w.env, Log: &strings.Builder{}})
	}
	p, err := plan(`metric "error_ratio" {
    source   = metric_source.prom
    query    = "` + strings.ReplaceAll(ratioQuery, `"`, `\"`) + `"
    max      = 0.01
    baseline = "1s"
    max_increase_percent = 50
  }`)
	if err != nil || !strings.Contains(p.Detail, "now 0.02") || !strings.Contains(p.Detail, "baseline (last 1s) 0.02") || len(p.Warnings) != 0 {
		t.Errorf("plan: %v\n%+v", err, p)
	}
	_, err = plan(`metric "bad" {
    source = metric_source.prom
    query  = "sum(rate(app_requests_total[1s])"
    max    = 1
  }`)
	if err == nil || !strings.Contains(err.Error(), `metric "bad": metric_source "prom" refused the query: `) || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad query: %v", err)
	}
	p, err = plan(`metric "typo" {
    source = metric_source.prom
    query  = "sum(rate(app_request_total[1s]))"
    max    = 1
  }`)
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], `metric "typo": the query returns no series now (a metric or label name typo?`) {
		t.Errorf("typo: %v %+v", err, p)
	}
	w.prom.Down()
	p, err = plan(`metric "down" {
    source = metric_source.prom
    query  = "up"
    max    = 1
  }`)
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], `metric "down": metric_source "prom" (`+w.prom.URL+`) does not answer: metric_source "prom": not reachable`) {
		t.Errorf("down: %v %+v", err, p)
	}
}

// Bad input at apply: a metric name typo (an empty vector) fails at the
// first interval with on_no_data = "fail"; a query that does not parse fails
// at once whatever on_no_data says. Each names the query.
func TestPromWindow_badInputAtApply(t *testing.T) {
	t.Parallel()
	w := newPromWindow(t, 0, 0)
	start := time.Now()
	_, err := w.apply(t, `
  duration = "30s"
  interval = "500ms"
  breach_for = "10s"
  metric "typo" {
    source     = metric_source.prom
    query      = "sum(rate(app_request_total[1s]))"
    max        = 1
    on_no_data = "fail"
  }`)
	if err == nil || !strings.Contains(err.Error(), `metric "typo": no data (on_no_data = "fail"): empty result: the query matches no series (a metric or label name typo?`) ||
		!strings.Contains(err.Error(), "query: sum(rate(app_request_total[1s]))") || time.Since(start) > 5*time.Second {
		t.Errorf("typo: after %v: %v", time.Since(start), err)
	}
	w.env.ID = "run2" // a new window: its own samples
	_, err = w.apply(t, `
  duration = "30s"
  interval = "500ms"
  metric "bad" {
    source     = metric_source.prom
    query      = "sum(rate(app_requests_total[1s])"
    max        = 1
    on_no_data = "pass"
  }`)
	if err == nil || !strings.Contains(err.Error(), `metric "bad": the query is refused: metric_source "prom" refused the query: `) || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad query: %v", err)
	}
}
