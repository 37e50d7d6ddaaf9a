package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/langtest"
)

// TestExamples_validate loads and validates every example under examples/
// with the real registry, as `upgrader validate` does in a CI job that has
// no secrets: no -var-file, required variables without a value are unknown.
func TestExamples_validate(t *testing.T) {
	ents, err := os.ReadDir("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join("../../examples", e.Name())
		if files, _ := filepath.Glob(filepath.Join(dir, "*.hcl")); len(files) == 0 {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			buildArtifacts(t, dir)
			reg := newRegistry()
			cfg, diags := lang.Load(dir, executor.Schemas(reg), lang.Options{Env: map[string]string{}, Unset: true})
			if !diags.HasErrors() {
				diags = append(diags, executor.Validate(cfg, reg)...)
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("%s", langtest.DiagString(d))
				}
			}
			if len(cfg.Nodes) == 0 {
				t.Errorf("no nodes")
			}
		})
	}
	if n == 0 {
		t.Fatal("no examples found")
	}
}

// buildArtifacts runs an example's build.sh when its dist/ is empty:
// validate checks that the release artifacts it names exist.
func buildArtifacts(t *testing.T, dir string) {
	t.Helper()
	script := filepath.Join(dir, "build.sh")
	if _, err := os.Stat(script); err != nil {
		return
	}
	if built, _ := filepath.Glob(filepath.Join(dir, "dist", "*.tar.gz")); len(built) > 0 {
		return
	}
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}
