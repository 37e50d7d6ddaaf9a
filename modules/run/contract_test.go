package run

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The action suite of modules.go on a LocalHost: a command guarded by
// creates (then by unless) runs once; plan after it is a skip. run has no
// undo of its own (a step's rollback block undoes a command).
func TestRun_contract(t *testing.T) {
	for _, guard := range []string{"creates = %q", "unless = \"test -e %s\""} {
		t.Run(guard[:6], func(t *testing.T) {
			r, h := modtest.LocalRunner(t, "r1")
			root := t.TempDir()
			marker := filepath.Join(root, "migrated")
			m := &Run{}
			r.CheckContract(modtest.Contract{Action: m, Exec: h.Exec, Roots: []string{root},
				Config: r.Decode(m, fmt.Sprintf("run {\n  command = \"echo done > %s\"\n  "+guard+"\n}", marker, marker))})
		})
	}
}
