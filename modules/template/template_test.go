package template

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestTemplate_plan(t *testing.T) {
	modtest.RunPlanCases(t, "testdata/plan/*.txtar", &Template{})
}

func TestTemplate_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Template{})
}

// Errors inside the template file point into it, not at the block.
func TestTemplate_validateErrorsInTemplate(t *testing.T) {
	cases := []struct {
		vars, source, wantFile, wantSummary string
		wantLine                            int
	}{
		{`{ version = "1" }`, "app.conf.tmpl", "app.conf.tmpl", "Unknown template variable", 2},
		{`{ version = "1" }`, "broken.tmpl", "broken.tmpl", "", 1},
		{`{ version = "1", port = [1] }`, "app.conf.tmpl", "app.conf.tmpl", "Invalid template interpolation value", 2},
		{`{ version = var.later }`, "app.conf.tmpl", "app.conf.tmpl", "Unknown template variable", 2}, // names known, values not yet
	}
	for _, c := range cases {
		src := "template {\n  source = \"" + c.source + "\"\n  destination = \"/etc/app/app.conf\"\n  vars = " + c.vars + "\n}\n"
		cfg, ds := modtest.DecodeBlock("t.hcl", []byte(src), (&Template{}).Spec(), modtest.EvalContext(), "testdata/validate")
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		ds = (&Template{}).Validate(cfg)
		if len(ds) == 0 {
			t.Fatalf("%s %s: no diagnostics", c.source, c.vars)
		}
		d := ds[0]
		if d.Severity != hcl.DiagError || d.Subject == nil || !strings.HasSuffix(d.Subject.Filename, c.wantFile) ||
			d.Subject.Start.Line != c.wantLine || !strings.Contains(d.Summary, c.wantSummary) {
			t.Errorf("%s %s: got %v at %v, want %q at %s:%d", c.source, c.vars, d.Summary, d.Subject, c.wantSummary, c.wantFile, c.wantLine)
		}
	}
	if _, err := os.Stat("testdata/validate/app.conf.tmpl"); err != nil {
		t.Fatal(err)
	}
}
