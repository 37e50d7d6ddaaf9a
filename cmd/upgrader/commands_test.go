package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCLI runs the upgrader command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

// golden compares got with testdata/NAME, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestValidate_minimalExample(t *testing.T) {
	code, out, errs := runCLI(t, "validate", "../../examples/minimal")
	if code != exitOK || !strings.Contains(out, "is valid: 3 nodes") || errs != "" {
		t.Errorf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

func TestValidate_invalidHuman(t *testing.T) {
	code, out, errs := runCLI(t, "validate", "-no-color", "testdata/validate/invalid")
	if code != exitInvalid || out != "" {
		t.Errorf("code %d, stdout %q", code, out)
	}
	if strings.Contains(errs, "correct-horse") {
		t.Errorf("sensitive value printed:\n%s", errs)
	}
	golden(t, "validate/invalid.txt", errs)
}

func TestValidate_invalidJSON(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "-json", "testdata/validate/invalid")
	if code != exitInvalid {
		t.Errorf("code %d", code)
	}
	var res struct {
		Valid       bool `json:"valid"`
		ErrorCount  int  `json:"error_count"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Range    struct {
				Filename string `json:"filename"`
				Start    struct{ Line, Column, Byte int }
				End      struct{ Line, Column, Byte int }
			} `json:"range"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if res.Valid || res.ErrorCount != len(res.Diagnostics) || res.ErrorCount < 3 {
		t.Errorf("result = %+v", res)
	}
	d := res.Diagnostics[0]
	if d.Severity != "error" || d.Summary != `Reference to undeclared host "wbe"` || d.Range.Start.Line != 12 || d.Range.Start.Column != 10 || d.Range.End.Column != 18 {
		t.Errorf("first diagnostic = %+v", d)
	}
	if strings.Contains(out, "correct-horse") {
		t.Errorf("sensitive value in JSON")
	}
	golden(t, "validate/invalid.json", out)
}

func TestValidate_usage(t *testing.T) {
	if code, _, _ := runCLI(t, "validate", "a", "b"); code != exitInvalid {
		t.Errorf("two dirs: code %d", code)
	}
	if code, _, errs := runCLI(t, "validate", "testdata/no-such-dir"); code != exitInvalid || !strings.Contains(errs, "Cannot read the configuration directory") {
		t.Errorf("missing dir: code %d, %s", code, errs)
	}
}

func TestGraph_phasedDOT(t *testing.T) {
	code, out, errs := runCLI(t, "graph", "testdata/graph/phased")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	golden(t, "graph/phased.dot", out)
}

func TestGraph_cycleStillDrawn(t *testing.T) {
	code, out, errs := runCLI(t, "graph", "-no-color", "../../executor/testdata/validate/invalid/cycle")
	if code != exitInvalid || !strings.Contains(errs, "Dependency cycle") || !strings.Contains(out, `"step.b" -> "check.a";`) {
		t.Errorf("code %d\n%s\n%s", code, out, errs)
	}
}

func TestFmt_checkAndRewrite(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"unformatted.hcl", "formatted.hcl"} {
		b, err := os.ReadFile(filepath.Join("testdata/fmt", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ := runCLI(t, "fmt", "-check", dir)
	if code != exitFmtDiff || strings.TrimSpace(out) != filepath.Join(dir, "unformatted.hcl") {
		t.Fatalf("-check: code %d, out %q", code, out)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "unformatted.hcl"))
	if string(before) == "" {
		t.Fatal("empty")
	}
	code, out, _ = runCLI(t, "fmt", dir)
	if code != exitOK || strings.TrimSpace(out) != filepath.Join(dir, "unformatted.hcl") {
		t.Fatalf("fmt: code %d, out %q", code, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "unformatted.hcl"))
	want := "host \"x\" {\n  address = \"198.51.100.1\"\n  labels  = { a = 1, bb = 2 }\n}\n"
	if string(after) != want {
		t.Errorf("formatted:\n%s\nwant:\n%s", after, want)
	}
	if st, _ := os.Stat(filepath.Join(dir, "unformatted.hcl")); st.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", st.Mode())
	}
	if code, out, _ := runCLI(t, "fmt", "-check", dir); code != exitOK || out != "" {
		t.Errorf("second -check: code %d, out %q", code, out)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("left files behind: %v", ents)
	}
}

func TestFmt_syntaxErrorRefused(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile("testdata/fmt/broken.hcl.txt")
	path := filepath.Join(dir, "broken.hcl")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "fmt", "-no-color", dir)
	if code != exitInvalid || !strings.Contains(errs, "broken.hcl:2:13: Error: Invalid expression") {
		t.Errorf("code %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Errorf("a file with a syntax error was rewritten")
	}
}

// An attribute of the 2nd of several nested blocks is reported where it is
// written, not at the first block (lang records BLOCK.N.ATTR ranges).
func TestValidate_nestedBlockAttributeAtItsLine(t *testing.T) {
	code, _, errs := runCLI(t, "validate", "-no-color", "testdata/validate/nested")
	want := "testdata/validate/nested/main.hcl:15:15: Error: Invalid log pattern"
	if code != exitInvalid || !strings.HasPrefix(errs, want) || !strings.Contains(errs, `15:     pattern = "ERROR("`) {
		t.Errorf("code %d, want %q first and the source line:\n%s", code, want, errs)
	}
}

// TestValidate_withoutValues: validate checks a configuration regardless of
// the variables provided (issue 19.4); required variables without a value
// are unknown, named in the output, and plan still refuses them.
func TestValidate_withoutValues(t *testing.T) {
	code, out, errs := runCLI(t, "validate", "-no-color", "testdata/validate/unset")
	if code != exitOK || errs != "" {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if !strings.Contains(out, "Checked without a value for 7 required variables (user, web_address, dsn, version, batch, window, port)") {
		t.Errorf("stdout does not name the unset variables:\n%s", out)
	}
	code, out, _ = runCLI(t, "validate", "-json", "testdata/validate/unset")
	var res struct {
		Valid bool     `json:"valid"`
		Unset []string `json:"unset"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK || !res.Valid || len(res.Unset) != 7 {
		t.Errorf("code %d, %v, json %s", code, err, out)
	}
	// A value given is still checked: a bad version fails its validation rule.
	code, _, errs = runCLI(t, "validate", "-no-color", "-var", "version=two", "testdata/validate/unset")
	if code != exitInvalid || !strings.Contains(errs, "version must look like 1.2.3") {
		t.Errorf("bad value: code %d\n%s", code, errs)
	}
	// A mistake elsewhere is still found with values missing.
	dir := t.TempDir()
	src, _ := os.ReadFile("testdata/validate/unset/main.hcl")
	bad := strings.Replace(string(src), "hosts      = [host.web]\n  batch_size", "hosts      = [host.wbe]\n  batch_size", 1)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs = runCLI(t, "validate", "-no-color", dir); code != exitInvalid || !strings.Contains(errs, `undeclared host "wbe"`) {
		t.Errorf("typo not found with values missing: code %d\n%s", code, errs)
	}
	// plan needs the values.
	code, _, errs = runCLI(t, "plan", "-no-color", "-offline", "testdata/validate/unset")
	if code != exitInvalid || !strings.Contains(errs, `No value for required variable "dsn"`) {
		t.Errorf("plan without values: code %d\n%s", code, errs)
	}
}

// TestValidateFmt_unquotedVariableInCommand: validate and fmt warn (exit 0)
// at each interpolation of a string variable into a shell command that
// shellquote() does not wrap, through locals too; numbers and quoted
// interpolations pass.
func TestValidateFmt_unquotedVariableInCommand(t *testing.T) {
	want := []string{
		"main.hcl:23:33: Warning: Unquoted variable in a shell command", // var.token
		"main.hcl:24:26: Warning: Unquoted variable in a shell command", // local.conf (from var.dir)
		"main.hcl:33:41: Warning: Unquoted variable in a shell command", // release activate
		"main.hcl:40:36: Warning: Unquoted variable in a shell command", // check command
	}
	for _, args := range [][]string{{"validate", "-no-color", "-var", "token=x", "-var", "port=1"}, {"fmt", "-check", "-no-color"}} {
		code, _, errs := runCLI(t, append(args, "testdata/validate/unquoted")...)
		if code != exitOK {
			t.Errorf("%s: code %d\n%s", args[0], code, errs)
		}
		if n := strings.Count(errs, "Warning: Unquoted variable"); n != len(want) {
			t.Errorf("%s: %d warnings, want %d:\n%s", args[0], n, len(want), errs)
		}
		for _, w := range want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: no %q in:\n%s", args[0], w, errs)
			}
		}
		if !strings.Contains(errs, "Quote it: ${shellquote(local.conf)}") || !strings.Contains(errs, "local.conf (from var.dir)") {
			t.Errorf("%s: the advice is missing:\n%s", args[0], errs)
		}
	}
}
