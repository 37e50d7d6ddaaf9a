package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/zclconf/go-cty/cty"
)

// A diagnostic whose expression reaches a sensitive value (here nested in
// an object) must not show it, in text or JSON.
func TestDiagnostics_sensitiveNotRendered(t *testing.T) {
	src := []byte("x = local.obj\n")
	f, diags := hclsyntax.ParseConfig(src, "main.hcl", hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	expr := attrs["x"].Expr
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"local": cty.ObjectVal(map[string]cty.Value{
			"obj": cty.ObjectVal(map[string]cty.Value{
				"user":     cty.StringVal("app"),
				"password": cty.StringVal("hunter2").Mark(lang.SensitiveMark),
			}),
		}),
	}}
	rng := expr.Range()
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad value", Detail: "no.", Subject: &rng, Expression: expr, EvalContext: ctx}

	var buf bytes.Buffer
	if err := Diagnostics(&buf, map[string]*hcl.File{"main.hcl": f}, hcl.Diagnostics{d}, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("secret rendered:\n%s", out)
	}
	if !strings.HasPrefix(out, "main.hcl:1:5: Error: Bad value") || !strings.Contains(out, "x = local.obj") {
		t.Errorf("unexpected rendering:\n%s", out)
	}

	buf.Reset()
	if err := ValidateJSON(&buf, hcl.Diagnostics{d}, nil); err != nil {
		t.Fatal(err)
	}
	var res ValidateResult
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil || res.Valid || res.ErrorCount != 1 || res.Diagnostics[0].Range.Start.Column != 5 {
		t.Errorf("json = %s (%v)", buf.String(), err)
	}
}
