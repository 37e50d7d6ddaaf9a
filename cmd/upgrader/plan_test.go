package main

import (
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
