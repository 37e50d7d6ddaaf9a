package observe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// TestValidate_cases decodes each testdata/validate file and compares the
// diagnostics with its `# ERROR:` comments (none: valid).
func TestValidate_cases(t *testing.T) {
	files, _ := filepath.Glob("testdata/validate/*.hcl")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".hcl"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, ds := decode(t, file, src, []string{"standby", "primary"}, []string{"regression"})
			if cfg != nil && !ds.HasErrors() {
				ds = append(ds, New().Validate(cfg)...)
			}
			for _, p := range modtest.MatchErrors(ds, modtest.ErrorComments(src)) {
				t.Error(p)
			}
		})
	}
}
