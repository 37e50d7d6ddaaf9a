// Package promcheck owns the `prometheus` probe of a check block: it runs a
// PromQL query on a metric_source and compares every series of the answer
// with `expect` ("< 0.01", ">= 1", "== 0"). No series at all is a failure:
// a check that sees nothing has not passed.
//
// It imports only modules, modules/metricsrc and lang/diags.
package promcheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/metricsrc"
)

// Prometheus is the prometheus probe kind.
type Prometheus struct{}

var (
	_ modules.Probe      = (*Prometheus)(nil)
	_ modules.Validator  = (*Prometheus)(nil)
	_ modules.Repeatable = (*Prometheus)(nil)
)

// New returns the prometheus probe.
func New() *Prometheus { return &Prometheus{} }

func (*Prometheus) Kind() string { return "prometheus" }

// Safe: a query reads only.
func (*Prometheus) Safe(*modules.Config) bool { return true }

func (*Prometheus) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"source": &hcldec.AttrSpec{Name: "source", Type: cty.DynamicPseudoType, Required: true},
		"query":  &hcldec.AttrSpec{Name: "query", Type: cty.String, Required: true},
		"expect": &hcldec.AttrSpec{Name: "expect", Type: cty.String, Required: true},
	}
}

type settings struct {
	source, query, shown string
	expect               metricsrc.Expect
}

func parse(cfg *modules.Config) (settings, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	v := cfg.Value
	s := settings{query: strings.TrimSpace(modules.GetString(v, "query"))}
	if src := modules.Get(v, "source"); src.IsKnown() && !src.IsNull() {
		if s.source = modules.RefName(src); s.source == "" || modules.GetString(src, "type") == "" {
			ds = append(ds, diags.At(*cfg.Range("source"), "Invalid source", "source must be a metric_source reference, like metric_source.prom."))
		}
	}
	if q := modules.Get(v, "query"); q.IsKnown() && !q.IsNull() {
		if s.query == "" {
			ds = append(ds, diags.At(*cfg.Range("query"), "Empty query", "query must be a PromQL expression returning numbers."))
		}
		s.shown = metricsrc.Trim(s.query)
		if q, _ := v.GetAttr("query").Unmark(); q.IsKnown() && v.GetAttr("query").IsMarked() {
			s.shown = "(sensitive)"
		}
	}
	if e := modules.Get(v, "expect"); e.IsKnown() && !e.IsNull() {
		ex, err := metricsrc.ParseExpect(modules.GetString(v, "expect"))
		if err != nil {
			ds = append(ds, diags.At(*cfg.Range("expect"), "Invalid expect", err.Error()+"."))
		}
		s.expect = ex
	}
	return s, ds
}

func (*Prometheus) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, ds := parse(cfg)
	return ds
}

// Check runs the query once; every series must meet expect.
func (*Prometheus) Check(ctx context.Context, req *modules.Request) error {
	s, ds := parse(req.Config)
	if ds.HasErrors() {
		return diags.Err(ds)
	}
	src, err := req.Env.MetricSource(s.source)
	if err != nil {
		return err
	}
	c, err := metricsrc.Open(src)
	if err != nil {
		return err
	}
	res, err := c.Query(ctx, s.query, timeZero)
	if err != nil {
		return fmt.Errorf("prometheus check: %v; query: %s", err, s.shown)
	}
	if len(res.Series) == 0 {
		return fmt.Errorf("prometheus check: expected %s, the query returned no series (a metric or label name typo? no scrape yet?); query: %s", s.expect, s.shown)
	}
	var bad []string
	for _, x := range res.Series {
		if !s.expect.Match(x.Value) {
			name := ""
			if x.Name != "{}" {
				name = x.Name + " "
			}
			bad = append(bad, name+metricsrc.Num(x.Value))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	shown := bad
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return fmt.Errorf("prometheus check: expected %s, got %s; query: %s", s.expect, strings.Join(shown, ", "), s.shown)
}

// timeZero asks for the value now.
var timeZero = time.Time{}
