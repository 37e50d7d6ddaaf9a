package metricsrc

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upgrader-dev/upgrader/internal/testprom"
	"github.com/upgrader-dev/upgrader/modules"
)

// exporter serves two counters on 127.0.0.1 for a real Prometheus to scrape.
func exporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total"}, []string{"code"})
	reg.MustRegister(c)
	c.WithLabelValues("200").Add(90)
	c.WithLabelValues("500").Add(10)
	return testprom.Exporter(t, reg)
}

func TestQuery_realPrometheus(t *testing.T) {
	t.Parallel()
	target := exporter(t)
	srv := testprom.New(t, testprom.Options{Targets: []string{target}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitScraped(ctx, []string{target}, 1); err != nil {
		t.Fatal(err)
	}
	c, err := Open(&modules.MetricSource{Name: "prom", Kind: "prometheus", URL: srv.URL, Timeout: 5 * time.Second,
		Headers: map[string]string{"Authorization": "Bearer s3cret-token"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Query(ctx, `test_requests_total`, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.Series {
		names = append(names, fmt.Sprintf("%s=%g", s.Name, s.Value))
	}
	want := fmt.Sprintf(`test_requests_total{code="200", instance=%q, job="app"}=90 test_requests_total{code="500", instance=%q, job="app"}=10`, target, target)
	if got := strings.Join(names, " "); got != want {
		t.Errorf("series:\n got %s\nwant %s", got, want)
	}
	res, err = c.Query(ctx, `sum(test_requests_total{code=~"5.."}) / sum(test_requests_total)`, time.Time{})
	if err != nil || len(res.Series) != 1 || res.Series[0].Name != "{}" || math.Abs(res.Series[0].Value-0.1) > 1e-9 {
		t.Errorf("ratio = %+v, %v; want one series {} = 0.1", res, err)
	}
	// A metric name typo: an empty vector, not an error.
	res, err = c.Query(ctx, `test_request_total`, time.Time{})
	if err != nil || len(res.Series) != 0 {
		t.Errorf("typo = %+v, %v; want no series", res, err)
	}
	// A query that does not parse: Prometheus's own message, marked as such.
	_, err = c.Query(ctx, `sum(rate(test_requests_total[2m])`, time.Time{})
	if !IsBadQuery(err) || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad query: %v", err)
	}
	mean, err := c.Mean(ctx, `sum(test_requests_total)`, time.Now().Add(-time.Minute), time.Now(), time.Second)
	if err != nil || len(mean.Series) != 1 || mean.Series[0].Value != 100 {
		t.Errorf("mean = %+v, %v; want 100", mean, err)
	}

	// Hung server: the timeout answers, and names itself.
	c.src.Timeout = 500 * time.Millisecond
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Query(ctx, `up`, time.Time{})
	srv.Resume()
	if err == nil || !strings.Contains(err.Error(), "timeout") || time.Since(start) > 3*time.Second {
		t.Errorf("paused server: %v after %v", err, time.Since(start))
	}
	srv.Down()
	_, err = c.Query(ctx, `up`, time.Time{})
	if err == nil || IsBadQuery(err) || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("stopped server: %v", err)
	}
}

// Headers reach the server; their values never reach an error.
func TestHeaders_sentAndHidden(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		http.Error(w, "denied for Bearer s3cret-token", http.StatusForbidden)
	}))
	defer ts.Close()
	c, _ := Open(&modules.MetricSource{Name: "prom", URL: ts.URL, Timeout: 2 * time.Second, Headers: map[string]string{"Authorization": "Bearer s3cret-token"}})
	_, err := c.Query(context.Background(), "up", time.Time{})
	if h := <-got; h != "Bearer s3cret-token" {
		t.Errorf("Authorization = %q", h)
	}
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error = %v: want an error without the token", err)
	}
}

func TestParseExpect(t *testing.T) {
	for in, want := range map[string]string{"< 0.01": "< 0.01", ">=1": ">= 1", "= 0": "== 0", "!= 2e3": "!= 2000"} {
		e, err := ParseExpect(in)
		if err != nil || e.String() != want {
			t.Errorf("ParseExpect(%q) = %v, %v; want %s", in, e, err, want)
		}
	}
	for _, bad := range []string{"", "0.01", "< x", "~ 1"} {
		if _, err := ParseExpect(bad); err == nil {
			t.Errorf("ParseExpect(%q) accepted", bad)
		}
	}
	if (Expect{Op: "<", Value: 1}).Match(math.NaN()) {
		t.Error("NaN < 1 matched")
	}
}
