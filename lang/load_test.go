package lang_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/upgrader-dev/upgrader/lang"
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

func subdirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func diagString(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return fmt.Sprintf("(no range): %s: %s", d.Summary, d.Detail)
	}
	return fmt.Sprintf("%s:%d,%d: %s: %s", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail)
}

func TestLoad_valid(t *testing.T) {
	for _, name := range subdirs(t, "testdata/valid") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/valid", name)
			cfg, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
			for _, d := range diags {
				t.Errorf("unexpected diagnostic: %s", diagString(d))
			}
			if cfg == nil || len(cfg.Nodes) == 0 && len(cfg.Hosts) == 0 {
				t.Fatalf("loaded nothing")
			}
		})
	}
}

// marker is an expected diagnostic: "# ERROR: summary" on the line it must point at.
type marker struct {
	file    string
	line    int
	summary string
}

func (m marker) String() string { return fmt.Sprintf("%s:%d: %s", m.file, m.line, m.summary) }

func readMarkers(t *testing.T, dir string) []marker {
	t.Helper()
	var out []marker
	files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			for {
				i := strings.Index(text, "# ERROR: ")
				if i < 0 {
					break
				}
				rest := text[i+len("# ERROR: "):]
				summary := rest
				if j := strings.Index(rest, " # ERROR: "); j >= 0 {
					summary = rest[:j]
				}
				out = append(out, marker{file: filepath.Base(f), line: line, summary: strings.TrimSpace(summary)})
				text = rest
			}
		}
		fh.Close()
	}
	return out
}

// CheckMarkers compares error diagnostics with the markers of dir: each
// marker must be matched by one diagnostic on its line with its summary,
// and each error must be matched by a marker.
func checkMarkers(t *testing.T, dir string, diags hcl.Diagnostics) {
	t.Helper()
	markers := readMarkers(t, dir)
	if len(markers) == 0 {
		t.Fatalf("%s has no # ERROR: markers", dir)
	}
	used := make([]bool, len(markers))
	var unexpected []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		found := false
		for i, m := range markers {
			if used[i] || d.Subject == nil {
				continue
			}
			if filepath.Base(d.Subject.Filename) == m.file && d.Subject.Start.Line == m.line && d.Summary == m.summary {
				used[i], found = true, true
				break
			}
		}
		if !found {
			unexpected = append(unexpected, diagString(d))
		}
	}
	sort.Strings(unexpected)
	for _, u := range unexpected {
		t.Errorf("unexpected diagnostic: %s", u)
	}
	for i, m := range markers {
		if !used[i] {
			t.Errorf("missing diagnostic: %s", m)
		}
	}
}

func TestLoad_invalid(t *testing.T) {
	for _, name := range subdirs(t, "testdata/invalid") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/invalid", name)
			_, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
			checkMarkers(t, dir, diags)
		})
	}
}
