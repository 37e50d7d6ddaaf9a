package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
)

// TestLoad_deepNesting: input nested far beyond any real configuration is
// a diagnostic at the place it gets too deep, not a Go stack overflow (a
// crash no recover catches) after eating a gigabyte.
func TestLoad_deepNesting(t *testing.T) {
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	cases := map[string]string{
		"brackets":      "locals {\n  x = " + deep("[", "]", 100000) + "\n}\n",
		"unclosed":      "locals {\n  x = " + strings.Repeat("[", 100000) + "\n}\n",
		"parentheses":   "locals {\n  x = " + deep("(", ")", 100000) + "\n}\n",
		"objects":       "locals {\n  x = " + deep("{a=", "}", 100000) + "\n}\n",
		"unary":         "locals {\n  x = " + strings.Repeat("!", 100000) + "true\n}\n",
		"negation":      "locals {\n  x = " + strings.Repeat("- ", 100000) + "1\n}\n",
		"conditionals":  "locals {\n  x = " + strings.Repeat("true ? 1 : ", 100000) + "2\n}\n",
		"interpolation": "locals {\n  x = " + deep(`"${`, `}"`, 100000) + "\n}\n",
		"heredoc":       "locals {\n  x = <<EOT\n" + deep("${", "}", 100000) + "\nEOT\n}\n",
		"blocks":        deep("step \"x\" {\n", "}\n", 100000),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, ds := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
			if len(ds) != 1 || ds[0].Summary != "Too deeply nested" || ds[0].Subject == nil {
				t.Fatalf("want one 'Too deeply nested' diagnostic with a subject, got %v", ds)
			}
			if r := ds[0].Subject; r.Start.Line < 1 || !strings.HasSuffix(r.Filename, "main.hcl") {
				t.Errorf("subject %v", r)
			}
		})
	}
}

// TestLoad_nestingBelowLimit: nesting up to the limit still loads, and
// brackets inside strings, comments and heredocs do not count.
func TestLoad_nestingBelowLimit(t *testing.T) {
	n := diags.MaxNesting - 4
	many := strings.Repeat("[", 5000)
	src := "# " + many + "\n/* " + many + " */\nlocals {\n" +
		"  a = " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "\n" +
		"  b = \"" + many + "\"\n" +
		"  c = <<EOT\n" + many + "\nEOT\n" +
		"  d = \"$${" + many + "\"\n" +
		"}\n"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
	if ds.HasErrors() {
		t.Fatalf("unexpected diagnostics: %v", ds)
	}
	if cfg.Locals["b"].AsString() != many {
		t.Errorf("local b is %q", cfg.Locals["b"].GoString()[:40])
	}
}

// TestLoad_deepVarFileAndVar: -var-file files and -var values pass the
// same bound.
func TestLoad_deepVarFileAndVar(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("variable \"l\" {\n  type = list(any)\n  default = []\n}\n"), 0o644)
	vf := filepath.Join(dir, "deep.vars.hcl")
	os.WriteFile(vf, []byte("l = "+strings.Repeat("[", 100000)+"\n"), 0o644)
	_, ds := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}, VarFiles: []string{vf}})
	if !ds.HasErrors() || ds[0].Summary != "Too deeply nested" {
		t.Errorf("var file: %v", ds)
	}
	_, ds = lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}, Vars: []string{"l=" + strings.Repeat("[", 100000)}})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "nested more than") {
		t.Errorf("-var: %v", ds)
	}
}
