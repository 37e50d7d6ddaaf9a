package runstore_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/storetest"
)

func TestLocal(t *testing.T) {
	t.Parallel()
	storetest.Suite{
		New: func(t *testing.T) runstore.Store { return runstore.OpenLocal(t.TempDir()) },
		Reopen: func(t *testing.T, s runstore.Store) runstore.Store {
			return runstore.OpenLocal(s.(*runstore.Local).Dir)
		},
		Tear: func(t *testing.T, s runstore.Store, run string, partial []byte) {
			f, err := os.OpenFile(journal.Path(s.(*runstore.Local).Dir, run), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(partial); err != nil {
				t.Fatal(err)
			}
		},
		// The holder "died": the lock names a pid that no longer runs.
		Expire: func(t *testing.T, s runstore.Store) {
			dir := s.(*runstore.Local).Dir
			h, err := journal.ReadLock(dir)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("true")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			h.PID = cmd.Process.Pid
			if err := os.Remove(dir + "/" + journal.LockFile); err != nil {
				t.Fatal(err)
			}
			b, _ := jsonMarshal(h)
			if err := os.WriteFile(dir+"/"+journal.LockFile, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}.Run(t)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
