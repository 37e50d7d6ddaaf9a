package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testbin"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

// controller is one operator's machine: a working copy of the
// configuration of its own, the shared DSN in its environment.
type controller struct {
	dir string
	env []string
}

func (c controller) start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(testbin.Upgrader(t), append(args, c.dir)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func (c controller) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd, out := c.start(t, args...)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func twoControllers(t *testing.T, bed *testbed.Testbed, dsn string, files ...string) (a, b controller) {
	t.Helper()
	env := append(os.Environ(), "UPGRADER_STATE_DSN="+dsn)
	mk := func() controller {
		dir := t.TempDir()
		for _, f := range files {
			src, err := os.ReadFile(filepath.Join("testdata", "shared", f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), src, 0o644)
		}
		if err := bed.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
			t.Fatal(err)
		}
		return controller{dir: dir, env: env}
	}
	return mk(), mk()
}

// Issue 16, must show 1 and 2: operator A applies with the postgres
// backend; in the window, B (another directory) sees the window and the
// latest metrics, and B's apply exits 4 naming A. A is SIGKILLed: B's
// resume is refused while A's lease runs, then takes the run over and
// finishes it at the original deadline, each step once; A, started again
// meanwhile, refuses (B has the run) and says who has it.
func TestSharedState_twoControllersTakeOver(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	dsn := testdb.Postgres(t).CreateDatabase(testdb.UniqueName("shared"))
	a, b := twoControllers(t, bed, dsn, "main.hcl")

	applyA, outA := a.start(t, "apply", "-auto-approve", "-no-color")
	killed := false
	t.Cleanup(func() {
		if !killed {
			applyA.Process.Kill()
			applyA.Wait()
		}
	})
	var status string
	waitFor(t, "B to see A's window with samples", 90*time.Second, func() bool {
		_, status = b.run(t, "status", "-no-color")
		return strings.Contains(status, "observe.soak") && strings.Contains(status, "cpu")
	})
	if !strings.Contains(status, "running") || !strings.Contains(status, "left") {
		t.Errorf("B's status of A's run:\n%s", status)
	}
	_, sj := b.run(t, "status", "-json")
	var st struct {
		Run     string `json:"run"`
		Windows []struct {
			Node     string    `json:"node"`
			Deadline time.Time `json:"deadline"`
		} `json:"observation_windows"`
	}
	if err := json.Unmarshal([]byte(sj), &st); err != nil || len(st.Windows) != 1 {
		t.Fatalf("status -json: %v\n%s", err, sj)
	}
	deadline := st.Windows[0].Deadline

	code, out := b.run(t, "apply", "-auto-approve", "-no-color")
	if code != exitLocked || !strings.Contains(out, fmt.Sprintf("pid %d", applyA.Process.Pid)) || !strings.Contains(out, st.Run) {
		t.Fatalf("B's apply while A runs: exit %d, want 4 naming A:\n%s", code, out)
	}

	applyA.Process.Signal(syscall.SIGKILL)
	applyA.Wait()
	killed = true
	t.Logf("A killed:\n%s", outA.String())

	code, out = b.run(t, "resume", "-no-color")
	if code != exitLocked || !strings.Contains(out, fmt.Sprintf("pid %d", applyA.Process.Pid)) {
		t.Fatalf("B's resume within A's lease: exit %d, want 4 naming A:\n%s", code, out)
	}
	time.Sleep(3500 * time.Millisecond) // the lease
	resumeB, outB := b.start(t, "resume", "-no-color")
	waitFor(t, "B to hold the run", 30*time.Second, func() bool {
		pg, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, Workspace: "shop-prod"})
		if err != nil {
			return false
		}
		defer pg.Close()
		h, _, _ := pg.Holder(context.Background())
		return h != nil && h.PID == resumeB.Process.Pid
	})
	code, out = a.run(t, "resume", "-no-color")
	if code != exitLocked || !strings.Contains(out, fmt.Sprintf("pid %d", resumeB.Process.Pid)) {
		t.Fatalf("A started again while B has the run: exit %d, want 4 naming B:\n%s", code, out)
	}
	if err := resumeB.Wait(); err != nil {
		t.Fatalf("B's resume: %v\n%s", err, outB.String())
	}
	finished := time.Now()
	if got := hostCat(t, web, "/tmp/app/c1") + hostCat(t, web, "/tmp/app/c2"); got != "11" {
		t.Errorf("counters c1 c2 = %q, want each step once", got)
	}
	if finished.Before(deadline) || finished.After(deadline.Add(20*time.Second)) {
		t.Errorf("B finished at %s; the window's original deadline was %s", finished.Format(time.RFC3339), deadline.Format(time.RFC3339))
	}
	_, sj = a.run(t, "status", "-json")
	st.Windows = nil
	if err := json.Unmarshal([]byte(sj), &st); err != nil || len(st.Windows) != 1 || !st.Windows[0].Deadline.Equal(deadline) || !strings.Contains(sj, `"state": "done"`) {
		t.Errorf("A's status after B finished (the window's deadline must stay %s):\n%s", deadline, sj)
	}
	code, out = a.run(t, "runs", "-no-color")
	if code != 0 || !strings.Contains(out, st.Run) || !strings.Contains(out, "done") {
		t.Errorf("runs: exit %d\n%s", code, out)
	}
	if strings.Contains(outA.String()+outB.String()+status+sj+out, dsn) {
		t.Error("the DSN was printed")
	}
}

// Issue 16, must show 4: two applies started at once from two machines:
// exactly one runs, the other exits 4 naming it.
func TestSharedState_twoAppliesAtOnce(t *testing.T) {
	bed := startBed(t, "web")
	dsn := testdb.Postgres(t).CreateDatabase(testdb.UniqueName("race"))
	a, b := twoControllers(t, bed, dsn, "quick.hcl")
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		outs := make([]string, 2)
		for i, c := range []controller{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], outs[i] = c.run(t, "apply", "-auto-approve", "-no-color")
			}()
		}
		wg.Wait()
		ok, locked := 0, 0
		for i := range codes {
			switch codes[i] {
			case 0:
				ok++
			case exitLocked:
				locked++
				if !strings.Contains(outs[i], "is locked by") {
					t.Errorf("round %d: the refused apply does not name the holder:\n%s", round, outs[i])
				}
			}
		}
		if ok != 1 || locked != 1 {
			t.Fatalf("round %d: exits %v, want one 0 and one 4\nA:\n%s\nB:\n%s", round, codes, outs[0], outs[1])
		}
	}
	pg, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, Workspace: "race"})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	runs, _ := pg.Runs(context.Background())
	if len(runs) != 3 {
		t.Fatalf("%d runs recorded, want 3 (one per round)", len(runs))
	}
}

// Fencing: A is paused (SIGSTOP, a laptop asleep) in its window; B takes
// the run over after the lease; when A wakes up it finds it lost the lease
// and stops without touching the host, naming B; B finishes, each step once.
func TestSharedState_pausedHolderIsFenced(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	dsn := testdb.Postgres(t).CreateDatabase(testdb.UniqueName("fence"))
	a, b := twoControllers(t, bed, dsn, "main.hcl")
	applyA, outA := a.start(t, "apply", "-auto-approve", "-no-color")
	t.Cleanup(func() { applyA.Process.Signal(syscall.SIGCONT); applyA.Process.Kill(); applyA.Wait() })
	waitFor(t, "A's window", 90*time.Second, func() bool {
		_, st := b.run(t, "status", "-no-color")
		return strings.Contains(st, "observe.soak") && strings.Contains(st, "cpu")
	})
	applyA.Process.Signal(syscall.SIGSTOP)
	time.Sleep(3500 * time.Millisecond)
	resumeB, outB := b.start(t, "resume", "-no-color")
	waitFor(t, "B to hold the run", 30*time.Second, func() bool {
		pg, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, Workspace: "shop-prod"})
		if err != nil {
			return false
		}
		defer pg.Close()
		h, _, _ := pg.Holder(context.Background())
		return h != nil && h.PID == resumeB.Process.Pid
	})
	applyA.Process.Signal(syscall.SIGCONT)
	done := make(chan error, 1)
	go func() { done <- applyA.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("A went on after losing its lease:\n%s", outA.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("A did not stop within 30 s of waking up:\n%s", outA.String())
	}
	if !strings.Contains(outA.String(), "lost the lock") || !strings.Contains(outA.String(), fmt.Sprintf("pid %d", resumeB.Process.Pid)) {
		t.Errorf("A's output does not say it lost the run to B:\n%s", outA.String())
	}
	if err := resumeB.Wait(); err != nil {
		t.Fatalf("B's resume: %v\n%s", err, outB.String())
	}
	if got := hostCat(t, web, "/tmp/app/c1") + hostCat(t, web, "/tmp/app/c2"); got != "11" {
		t.Errorf("counters c1 c2 = %q, want each step once", got)
	}
}
