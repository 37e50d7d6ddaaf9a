package journal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const raceRun = "20261128T101500-abcd"

var (
	deadOnce sync.Once
	deadPid  int
)

// staleLock leaves dir locked by raceRun under a dead pid (the crashed run).
// One dead pid serves every round: were it reused meanwhile, the start time
// recorded (ours) still tells the new process apart.
func staleLock(t *testing.T, dir string) {
	t.Helper()
	deadOnce.Do(func() { deadPid = deadPID(t) })
	me := Me(raceRun)
	me.PID = deadPid
	if _, err := acquire(dir, me); err != nil {
		t.Fatal(err)
	}
}

// Issue 13.11: four goroutines take over the same stale lock at once;
// exactly one may hold it (check-then-remove let two win in 23% of rounds).
func TestTakeOver_racingGoroutinesOneHolder(t *testing.T) {
	t.Parallel()
	const rounds, takers = 60, 4
	for round := 0; round < rounds; round++ {
		dir := t.TempDir()
		staleLock(t, dir)
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < takers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := TakeOver(dir, raceRun)
				var le *LockedError
				switch {
				case err == nil:
					won.Add(1)
				case !errors.As(err, &le) || le.Stale:
					t.Errorf("round %d: loser got %v, want a live holder's LockedError", round, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d holders, want exactly 1", round, n)
		}
	}
}

// The same with processes: each taker is this test binary re-executed; a
// winner keeps running (so its lock stays live) until every taker answered.
func TestTakeOver_racingProcessesOneHolder(t *testing.T) {
	if dir := os.Getenv("JOURNAL_TAKER_DIR"); dir != "" {
		_, err := TakeOver(dir, raceRun)
		if err == nil {
			fmt.Println("held")
		} else {
			fmt.Println("refused:", strings.ReplaceAll(err.Error(), "\n", " "))
		}
		io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		os.Exit(0)
	}
	t.Parallel()
	const rounds, takers = 10, 4
	for round := 0; round < rounds; round++ {
		dir := t.TempDir()
		staleLock(t, dir)
		var cmds []*exec.Cmd
		var stdins []io.WriteCloser
		var outs []*bufio.Reader
		for i := 0; i < takers; i++ {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTakeOver_racingProcessesOneHolder$")
			cmd.Env = append(os.Environ(), "JOURNAL_TAKER_DIR="+dir)
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, stdins, outs = append(cmds, cmd), append(stdins, in), append(outs, bufio.NewReader(out))
		}
		held := 0
		for i, out := range outs {
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: taker %d: %v", round, i, err)
			}
			switch {
			case line == "held\n":
				held++
			case strings.HasPrefix(line, "refused:") && strings.Contains(line, "is locked by"):
			default:
				t.Errorf("round %d: taker %d said %q", round, i, line)
			}
		}
		for i := range cmds {
			stdins[i].Close()
			cmds[i].Wait()
		}
		if held != 1 {
			t.Fatalf("round %d: %d processes hold the lock, want exactly 1", round, held)
		}
	}
}

// unlock racing a taker: the taker either wins the stale lock or finds none
// and takes a fresh one; never two holders, never a lock removed under a holder.
func TestUnlock_racingTakeOver(t *testing.T) {
	t.Parallel()
	for round := 0; round < 50; round++ {
		dir := t.TempDir()
		staleLock(t, dir)
		var wg sync.WaitGroup
		var l *Lock
		var terr error
		wg.Add(2)
		go func() { defer wg.Done(); l, terr = TakeOver(dir, raceRun) }()
		go func() { defer wg.Done(); Unlock(dir, false) }()
		wg.Wait()
		if terr != nil {
			t.Fatalf("round %d: TakeOver: %v", round, terr)
		}
		cur, err := ReadLock(dir)
		if err != nil || cur.PID != l.Info.PID {
			t.Fatalf("round %d: the taker holds no lock on disk (%v, %+v): Unlock removed a live lock", round, err, cur)
		}
	}
}
