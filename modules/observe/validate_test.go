package observe

import (
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// TestValidate_cases decodes each testdata/validate file and compares the
// diagnostics with its `# ERROR:` comments (none: valid).
func TestValidate_cases(t *testing.T) {
	eachCase(t, "testdata/validate/*.hcl", func(t *testing.T, src []byte, _ map[string][]byte) {
		cfg, ds := decode(t, t.Name()+".hcl", src, []string{"standby", "primary"}, []string{"regression"})
		if cfg != nil && !ds.HasErrors() {
			ds = append(ds, New().Validate(cfg)...)
		}
		for _, p := range modtest.MatchErrors(ds, modtest.ErrorComments(src)) {
			t.Error(p)
		}
		for _, d := range ds {
			if strings.Contains(d.Summary+d.Detail, "hunter2") {
				t.Errorf("a sensitive value in a diagnostic: %s", d.Error())
			}
		}
	})
}
