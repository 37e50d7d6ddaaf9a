package promcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upgrader-dev/upgrader/internal/testprom"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestPrometheus_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", New())
}

// TestPrometheus_check runs the probe against a real Prometheus scraping a
// small exporter: a pass, a failing series named by its labels, no data, a
// query that does not parse, and a server that is gone.
func TestPrometheus_check(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "queue_depth"}, []string{"queue"})
	reg.MustRegister(g)
	g.WithLabelValues("orders").Set(3)
	g.WithLabelValues("mail").Set(250)
	addr := testprom.Exporter(t, reg)
	prom := testprom.New(t, testprom.Options{Targets: []string{addr}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := prom.WaitScraped(ctx, []string{addr}, 1); err != nil {
		t.Fatal(err)
	}
	env := &modtest.Env{MetricSources: map[string]*modules.MetricSource{"prom": {Name: "prom", Kind: "prometheus", URL: prom.URL, Timeout: 2 * time.Second}}}
	check := func(query, expect string) error {
		src := "prometheus {\n  source = metric_source.prom\n  query  = " + `"` + strings.ReplaceAll(query, `"`, `\"`) + `"` + "\n  expect = \"" + expect + "\"\n}\n"
		cfg, ds := modtest.DecodeBlock("check.hcl", []byte(src), New().Spec(), modtest.EvalContext(), t.TempDir())
		if ds.HasErrors() {
			t.Fatal(ds.Error())
		}
		return New().Check(ctx, &modules.Request{Config: cfg, Node: "check.queues", Env: env})
	}
	if err := check(`queue_depth{queue="orders"}`, "< 10"); err != nil {
		t.Errorf("orders < 10: %v", err)
	}
	for _, tc := range []struct{ query, expect, want string }{
		{`max by (queue) (queue_depth)`, "< 100", `prometheus check: expected < 100, got {queue="mail"} 250; query: max by (queue) (queue_depth)`},
		{`queue_dept`, "< 100", "the query returned no series (a metric or label name typo?"},
		{`sum(queue_depth`, "< 100", `prometheus check: metric_source "prom" refused the query: `},
	} {
		err := check(tc.query, tc.expect)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v; want %q", tc.query, tc.expect, err, tc.want)
		}
	}
	prom.Down()
	if err := check(`queue_depth`, "< 100"); err == nil || !strings.Contains(err.Error(), `metric_source "prom": not reachable`) {
		t.Errorf("down: %v", err)
	}
}
