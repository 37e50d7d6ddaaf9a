package release

import (
	"fmt"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The action suite of modules.go on a LocalHost: a first release, and an
// upgrade over an existing one (shared paths seeded and linked, activate run).
func TestRelease_contract(t *testing.T) {
	for _, upgrade := range []bool{false, true} {
		t.Run(fmt.Sprintf("upgrade=%v", upgrade), func(t *testing.T) {
			r, h := modtest.LocalRunner(t, "r1")
			root := t.TempDir()
			artifact(t, r.Dir, "1.0.0")
			artifact(t, r.Dir, "2.0.0")
			m := &Release{}
			decode := func(version string) string {
				return fmt.Sprintf(`release {
  artifact = "dist/app-%[1]s.tar.gz"
  dir      = %[2]q
  version  = %[1]q
  shared   = ["log", "config/app.conf"]
  activate = "bin/app > %[2]s/shared/log/started"
}`, version, root)
			}
			version := "1.0.0"
			if upgrade {
				r.Env.ID = "r0"
				r.MustApply(m, r.Decode(m, decode("1.0.0")))
				r.Env.ID = "r1"
				version = "2.0.0"
			}
			r.CheckContract(modtest.Contract{Action: m, Exec: h.Exec, Roots: []string{root}, Config: r.Decode(m, decode(version))})
		})
	}
}
