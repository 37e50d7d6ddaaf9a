package observe

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testprom"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// BenchmarkMetrics_10metrics10hosts is one round of a window with 10 metric
// blocks, each a query whose answer has one series per host, against a real
// Prometheus scraping 10 exporters every second: 10 queries, 100 series
// judged, 100 lines written. It reports the CPU time upgrader's process
// spends per round (getrusage: user + system, so goroutines and the HTTP
// client count) and, at a 10 s interval, the share of one core; and the
// Prometheus server's CPU per round (from /proc/PID/stat) for reference.
func BenchmarkMetrics_10metrics10hosts(b *testing.B) {
	var targets []string
	apps := make([]*promApp, 10)
	for i := range apps {
		apps[i] = newPromApp(b, int64(i))
		targets = append(targets, apps[i].addr)
	}
	prom := testprom.New(b, testprom.Options{Targets: targets, ScrapeInterval: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := prom.WaitScraped(ctx, targets, 3); err != nil {
		b.Fatal(err)
	}
	queries := []string{
		`sum by (instance) (rate(app_requests_total{code=~"5.."}[5s]))`,
		`sum by (instance) (rate(app_requests_total[5s]))`,
		`(sum by (instance) (rate(app_requests_total{code=~"5.."}[5s])) or vector(0)) / clamp_min(sum by (instance) (rate(app_requests_total[5s])), 1e-9)`,
		`sum by (instance) (increase(app_requests_total{code="500"}[10s]))`,
		`max by (instance) (app_requests_total)`,
		`sum by (instance) (rate(app_requests_total{code="200"}[5s]))`,
		`avg by (instance) (rate(app_requests_total[10s]))`,
		`sum by (instance) (up)`,
		`sum by (instance) (scrape_duration_seconds)`,
		`sum by (instance) (scrape_samples_scraped)`,
	}
	var blocks strings.Builder
	for i, q := range queries {
		fmt.Fprintf(&blocks, "  metric \"m%d\" {\n    source = metric_source.prom\n    query = %s\n    max = 1e12\n  }\n", i, strconv.Quote(q))
	}
	cfg, _ := mustSettings(b, "observe \"bench\" {\n  duration = \"72h\"\n  interval = \"10s\"\n"+blocks.String()+"}\n", nil, nil)
	env := &modtest.Env{ID: "bench", Dir: b.TempDir(), Targets: map[string]modules.Target{},
		MetricSources: map[string]*modules.MetricSource{"prom": {Name: "prom", Kind: "prometheus", URL: prom.URL, Timeout: 5 * time.Second}}}
	s, _ := parseSettings(cfg, false)
	w, err := newWindow(&modules.Request{Config: cfg, Node: "observe.bench", Index: -1, Env: env}, s)
	if err != nil {
		b.Fatal(err)
	}
	defer w.out.Close()
	if err := w.round(context.Background()); err != nil { // connections up
		b.Fatal(err)
	}
	promPid := prom.Pid()
	cpu0, prom0 := selfCPU(), procCPU(promPid)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := w.round(context.Background()); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	per := (selfCPU() - cpu0) / time.Duration(n)
	promPer := (procCPU(promPid) - prom0) / time.Duration(n)
	b.ReportMetric(float64(per.Microseconds())/1000, "cpu-ms/round")
	b.ReportMetric(100*per.Seconds()/10, "%core@10s")
	b.ReportMetric(float64(promPer.Microseconds())/1000, "prom-cpu-ms/round")
	// Every round judged 100 series.
	recs := 0
	ReadRecords(MetricsFile(env.Dir, env.ID), func(r *Record) error {
		if r.Type == RecordMetric && r.Value != nil {
			recs++
		}
		return nil
	})
	if want := 100 * (n + 1); recs < want*9/10 {
		b.Errorf("%d metric lines with a value after %d rounds, want about %d", recs, n+1, want)
	}
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user + system CPU time (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
