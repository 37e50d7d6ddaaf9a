package modtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
)

// SensitiveMark stands in for lang's sensitive mark in module tests: modules
// treat any mark on a known value as sensitive.
const SensitiveMark = "sensitive"

// EvalContext is the scope test blocks are decoded in: var.secret is a
// sensitive string, var.version a plain one, var.later an unknown.
func EvalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{
			"secret":  cty.StringVal("hunter2").Mark(SensitiveMark),
			"version": cty.StringVal("2.4.0"),
			"later":   cty.UnknownVal(cty.String).Mark("after:step.build"),
		}),
		// A metric_source block, as lang gives it.
		"metric_source": cty.ObjectVal(map[string]cty.Value{"prom": cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal("prom"), "type": cty.StringVal("prometheus"),
		})}),
	}}
}

// RunPlanCases runs every txtar case matching glob through m.Plan and
// compares the verdict with the case's want section.
func RunPlanCases(t *testing.T, glob string, m modules.Action) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases match %s (%v)", glob, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c := LoadCase(t, file)
			cfg, ds := DecodeBlock("config.hcl", c.Config, m.Spec(), EvalContext(), c.Dir)
			if ds.HasErrors() {
				t.Fatalf("decode: %s", ds.Error())
			}
			if v, ok := m.(modules.Validator); ok {
				if ds := v.Validate(cfg); ds.HasErrors() {
					t.Fatalf("validate: %s", ds.Error())
				}
			}
			req := &modules.Request{Config: cfg, Node: "step.test", Host: "web", Env: c.PlanEnv()}
			p, err := m.Plan(context.Background(), req)
			if want := c.Want["error"]; len(want) > 0 {
				if err == nil || !contains(err.Error(), want[0]) {
					t.Fatalf("plan error = %v, want one containing %q", err, want[0])
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			c.CheckPlan(t, p)
		})
	}
}

// RunValidateCases decodes every HCL file matching glob with m's spec, runs
// its Validator and compares the errors with the files' `# ERROR:` comments.
// Local paths resolve against the file's directory.
func RunValidateCases(t *testing.T, glob string, m modules.Module) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases match %s (%v)", glob, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, ds := DecodeBlock(file, src, m.Spec(), EvalContext(), filepath.Dir(file))
			if cfg != nil && !ds.HasErrors() {
				if v, ok := m.(modules.Validator); ok {
					ds = append(ds, v.Validate(cfg)...)
				}
			}
			for _, p := range MatchErrors(ds, ErrorComments(src)) {
				t.Error(p)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
