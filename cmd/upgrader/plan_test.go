package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// golden and -update come from commands_test.go.

func TestPlan_offlineGolden(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "plan", "offline"))
	code, stdout, stderr := upgrader("plan", "-offline", "-no-color", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout+stderr, "hunter2") {
		t.Fatal("a sensitive value was printed")
	}
	out := strings.ReplaceAll(stdout, dir, "DIR")
	out = regexp.MustCompile(`configuration [0-9a-f]{12}`).ReplaceAllString(out, "configuration HASH")
	golden(t, "plan/offline.txt", out)

	code, stdout, _ = upgrader("plan", "-offline", "-json", dir)
	if code != 0 || !strings.HasPrefix(stdout, `{"type":"plan","plan":{`) || strings.Contains(stdout, "hunter2") {
		t.Fatalf("plan -json: %d %s", code, stdout)
	}
}

func TestPlan_invalidJSONDiagnostics(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("step \"x\" {\n  host = host.nope\n  run { command = \"true\" }\n}\n"), 0o644)
	code, stdout, stderr := upgrader("plan", "-offline", "-json", dir)
	if code != exitInvalid || !strings.Contains(stdout, `"type":"diagnostics"`) || !strings.Contains(stdout, `"line":2`) || !strings.Contains(stderr, "main.hcl:2:") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// Every command that loads a configuration renders its diagnostics as
// validate does: FILE:LINE:COL with FILE as given, the source line, exit 2;
// and -json gives the same diagnostics (docs/JSON.md).
func TestPlan_invalidConfigRenderedAsValidate(t *testing.T) {
	dir := filepath.Join("testdata", "validate", "invalid")
	want, err := os.ReadFile(filepath.Join("testdata", "validate", "invalid.txt"))
	if err != nil {
		t.Fatal(err)
	}
	_, vjson, _ := upgrader("validate", "-json", dir)
	var vres struct {
		Diagnostics []json.RawMessage `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(vjson), &vres); err != nil || len(vres.Diagnostics) == 0 {
		t.Fatalf("validate -json: %v %s", err, vjson)
	}
	for _, args := range [][]string{
		{"plan", "-offline", "-no-color", dir},
		{"plan", "-no-color", dir},
		{"apply", "-no-color", "-auto-approve", dir},
	} {
		code, stdout, stderr := upgrader(args...)
		if code != exitInvalid || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
		if stderr != string(want) {
			t.Errorf("%v: stderr differs from validate's:\n--- got\n%s\n--- want\n%s", args, stderr, want)
		}
		jargs := append([]string{args[0], "-json"}, args[1:]...)
		code, stdout, _ = upgrader(jargs...)
		var res struct {
			Type        string            `json:"type"`
			Diagnostics []json.RawMessage `json:"diagnostics"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitInvalid || res.Type != "diagnostics" {
			t.Fatalf("%v: exit %d, %v: %s", jargs, code, err, stdout)
		}
		if g, w := fmt.Sprintf("%s", res.Diagnostics), fmt.Sprintf("%s", vres.Diagnostics); g != w {
			t.Errorf("%v: diagnostics differ from validate -json's:\n got %s\nwant %s", jargs, g, w)
		}
	}
}

// A cycle's diagnostic says "a -> b": -json must not escape it.
func TestPlan_jsonDiagnosticsNotHTMLEscaped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("gate \"a\" {\n  message = \"a\"\n  depends_on = [gate.b]\n}\ngate \"b\" {\n  message = \"b\"\n  depends_on = [gate.a]\n}\n"), 0o644)
	_, vout, _ := upgrader("validate", "-json", dir)
	code, stdout, _ := upgrader("plan", "-offline", "-json", dir)
	if code != exitInvalid || !strings.Contains(vout, "->") || !strings.Contains(stdout, "->") || strings.Contains(stdout, `\u003e`) {
		t.Errorf("exit %d\nvalidate: %s\nplan: %s", code, vout, stdout)
	}
}
