package lang_test

import (
	"strings"

	"encoding/json"
	"github.com/hashicorp/hcl/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/langtest"
	"github.com/zclconf/go-cty/cty"
)

// testSchemas stands in for the module registry: small specs shaped like
// the real modules' (lang must not import modules).
func testSchemas() lang.Schemas {
	attr := func(name string, ty cty.Type, req bool) *hcldec.AttrSpec {
		return &hcldec.AttrSpec{Name: name, Type: ty, Required: req}
	}
	return lang.Schemas{
		Nodes: map[string]hcldec.Spec{
			"backup": hcldec.ObjectSpec{
				"host":     attr("host", cty.DynamicPseudoType, false),
				"database": attr("database", cty.DynamicPseudoType, false),
				"paths":    attr("paths", cty.List(cty.String), false),
				"exclude":  attr("exclude", cty.List(cty.String), false),
			},
			"schema_check": hcldec.ObjectSpec{
				"database":    attr("database", cty.DynamicPseudoType, true),
				"reference":   attr("reference", cty.DynamicPseudoType, false),
				"ignore":      attr("ignore", cty.List(cty.String), false),
				"on_mismatch": attr("on_mismatch", cty.String, false),
			},
			"migrate": hcldec.ObjectSpec{
				"database": attr("database", cty.DynamicPseudoType, true),
				"dir":      attr("dir", cty.String, true),
			},
			"observe": hcldec.ObjectSpec{
				"duration":        attr("duration", cty.String, true),
				"hosts":           attr("hosts", cty.DynamicPseudoType, false),
				"checks":          attr("checks", cty.DynamicPseudoType, false),
				"max_cpu_percent": attr("max_cpu_percent", cty.Number, false),
				"log": &hcldec.BlockListSpec{TypeName: "log", Nested: hcldec.ObjectSpec{
					"path":    attr("path", cty.String, true),
					"pattern": attr("pattern", cty.String, true),
				}},
			},
		},
		Actions: map[string]hcldec.Spec{
			"upload": hcldec.ObjectSpec{
				"source":      attr("source", cty.String, true),
				"destination": attr("destination", cty.String, true),
				"mode":        attr("mode", cty.String, false),
			},
			"run": hcldec.ObjectSpec{
				"command": attr("command", cty.String, true),
				"timeout": attr("timeout", cty.String, false),
				"env":     attr("env", cty.Map(cty.String), false),
			},
			"restore": hcldec.ObjectSpec{
				"backup": attr("backup", cty.DynamicPseudoType, true),
			},
		},
		Probes: map[string]hcldec.Spec{
			"http": hcldec.ObjectSpec{
				"url":           attr("url", cty.String, true),
				"expect_status": attr("expect_status", cty.Number, false),
				"expect_body":   attr("expect_body", cty.String, false),
			},
			"command": hcldec.ObjectSpec{
				"host":    attr("host", cty.DynamicPseudoType, true),
				"command": attr("command", cty.String, true),
			},
		},
		Outputs: map[string]map[string]cty.Type{
			"backup":       {"id": cty.String, "archive": cty.String},
			"schema_check": {"matches": cty.Bool, "diff": cty.String},
			"migrate":      {"from": cty.Number, "to": cty.Number},
			"observe":      {"samples": cty.Number, "passed": cty.Bool},
		},
	}
}

// testOptions reads DIR/options.json when present: {"vars": [...],
// "var_files": [...] (relative to DIR), "env": {...}}.
func testOptions(t *testing.T, dir string) lang.Options {
	t.Helper()
	opts := lang.Options{Env: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "options.json"))
	if os.IsNotExist(err) {
		return opts
	}
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Vars     []string          `json:"vars"`
		VarFiles []string          `json:"var_files"`
		Env      map[string]string `json:"env"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("options.json: %v", err)
	}
	opts.Vars = o.Vars
	for _, f := range o.VarFiles {
		opts.VarFiles = append(opts.VarFiles, filepath.Join(dir, f))
	}
	if o.Env != nil {
		opts.Env = o.Env
	}
	return opts
}

func TestLoad_valid(t *testing.T) {
	for _, name := range langtest.Subdirs(t, "testdata/valid") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/valid", name)
			cfg, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
			for _, d := range diags {
				t.Errorf("unexpected diagnostic: %s", langtest.DiagString(d))
			}
			if cfg == nil || len(cfg.Nodes) == 0 && len(cfg.Hosts) == 0 {
				t.Fatalf("loaded nothing")
			}
		})
	}
}

func TestLoad_invalid(t *testing.T) {
	for _, name := range langtest.Subdirs(t, "testdata/invalid") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/invalid", name)
			_, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
			langtest.CheckMarkers(t, dir, diags)
		})
	}
}

// TestLoad_sensitiveNeverPrinted renders every diagnostic of the sensitive
// case as the CLI would and looks for the secrets.
func TestLoad_sensitiveNeverPrinted(t *testing.T) {
	dir := "testdata/invalid/sensitive"
	cfg, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
	if len(diags) == 0 {
		t.Fatal("no diagnostics")
	}
	var buf strings.Builder
	w := hcl.NewDiagnosticTextWriter(&buf, cfg.Files, 100, false)
	if err := w.WriteDiagnostics(diags); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "invalid character"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("secret %q printed:\n%s", secret, buf.String())
		}
	}
}
