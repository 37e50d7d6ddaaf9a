package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The action suite of modules.go for restore on a LocalHost: a backup of a
// tree, the tree changed, then restore (plan changes nothing, the restore
// gives back the backed-up tree, and restoring again leaves it so).
func TestRestore_contract(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tree has files of other owners")
	}
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf(makeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	env, h := localEnv(t, "r1")
	b := &Backup{}
	if _, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Index: -1, Env: env, Log: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	backedUp := modtest.Snapshot(t, h.Exec, []string{root + "/app/sub", root + "/etc"})
	if _, err := localExec(ctx, fmt.Sprintf(changeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	if modtest.Snapshot(t, h.Exec, []string{root + "/app/sub", root + "/etc"}) == backedUp {
		t.Fatal("the change did not touch the restored paths")
	}
	r := &modtest.Runner{T: t, Env: env, Host: "web", Dir: t.TempDir()}
	rs := &Restore{}
	cfg := decode(t, rs, fmt.Sprintf("restore {\n  backup = backup.web\n  paths  = [%q, %q]\n}", root+"/app/sub", root+"/etc"))
	r.CheckContract(modtest.Contract{Action: rs, Config: cfg, Exec: h.Exec, Roots: []string{root}, Acts: true})
	if got := modtest.Snapshot(t, h.Exec, []string{root + "/app/sub", root + "/etc"}); got != backedUp {
		t.Errorf("restore did not give back the backed-up tree:\nbacked up:\n%s\nrestored:\n%s", backedUp, got)
	}
}
