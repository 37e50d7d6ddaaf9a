package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
)

// killProcedure is small but has every kind of journal step: a backup, a
// step whose run action is not safe to repeat, a step with an upload and an
// idempotent run, and a last unsafe run. Each run appends to a log on the
// host, so the test counts how often it ran.
const killProcedure = `
backup "data" {
  host  = host.web
  paths = ["BASE/data"]
}

step "one" {
  host       = host.web
  depends_on = [backup.data]
  run {
    command = "echo ran >> BASE/one.log"
  }
}

step "two" {
  host       = host.web
  depends_on = [step.one]
  upload {
    source      = "app.conf"
    destination = "BASE/data/app.conf"
  }
  run {
    command    = "echo ran >> BASE/two.log"
    idempotent = true
  }
}

step "three" {
  host       = host.web
  depends_on = [step.two]
  run {
    command = "echo ran >> BASE/three.log"
  }
}
`

// killWorld is one kill point's configuration directory and host directory.
func killWorld(t *testing.T, parent *world, base string) *world {
	return killWorldOf(t, parent, base, killProcedure)
}

func killWorldOf(t *testing.T, parent *world, base, procedure string) *world {
	w := &world{t: t, bed: parent.bed, dir: t.TempDir(), bin: parent.bin}
	if err := parent.bed.WriteHostsHCL(filepath.Join(w.dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	w.write("main.hcl", strings.ReplaceAll(procedure, "BASE", base))
	w.write("app.conf", "version = 2\n")
	w.exec("web", fmt.Sprintf("rm -rf %[1]s && mkdir -p %[1]s/data && echo 'version = 1' > %[1]s/data/app.conf && chown -R deploy: %[1]s", base))
	return w
}

// slowFsyncs is the strace prefix that holds every fsync of the traced
// upgrader for 50 ms after it returns: the test, watching the journal
// every millisecond, kills the process while it still waits on the fsync
// of the line it is at, before it can act on it.
var slowFsyncs = []string{"strace", "-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_exit=50000"}

// applyKilledAt runs apply under slowFsyncs and SIGKILLs upgrader as soon
// as its journal holds n lines. It returns the lines the journal has after
// the kill (n, or more when two were fsynced together), 0 when the run
// ended before reaching n.
func applyKilledAt(t *testing.T, w *world, n int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append([]string(nil), slowFsyncs...), w.bin, "apply", "-auto-approve", "-no-color")
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = w.dir
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case <-done:
			return 0
		case <-time.After(time.Millisecond):
		}
		if journalLines(w) < n {
			continue
		}
		// strace's child is the traced upgrader (read now: it is ours and running).
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.Process.Pid, c.Process.Pid))
		for _, f := range strings.Fields(string(b)) {
			if pid, _ := strconv.Atoi(f); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		<-done
		return journalLines(w)
	}
}

func journalLines(w *world) int {
	js, _ := filepath.Glob(filepath.Join(w.stateDir(), "runs", "*", "journal.jsonl"))
	if len(js) == 0 {
		return 0
	}
	b, _ := os.ReadFile(js[0])
	return bytes.Count(b, []byte("\n"))
}

var retryRe = regexp.MustCompile(`-retry (step\.[a-z]+)`)

// TestKill_everyJournalLineThenResume SIGKILLs a real `upgrader apply` right after
// each line of its journal (one subtest per line: at/N), then resumes until
// the run is done.
// Every action must have run exactly once, or, when resume reports it as
// possibly run and stops, twice at most and only after -retry; an
// idempotent action may be repeated by resume on its own.
func TestKill_everyJournalLineThenResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	if _, err := os.Stat("/usr/bin/strace"); err != nil {
		t.Fatal("strace is needed (scripts/setup-debian.sh installs it)")
	}
	// Calibrate: how many journal lines does an undisturbed apply write?
	cal := killWorld(t, w, "/opt/kcal")
	if r := cal.upgrader("apply", "-auto-approve", "-no-color"); r.code != 0 {
		t.Fatalf("undisturbed apply: %s", r)
	}
	total := journalLines(cal)
	t.Logf("an undisturbed apply writes %d journal lines", total)

	sem := make(chan struct{}, 4) // sshd's MaxStartups (10) and 2 cores
	var mu sync.Mutex
	retried := map[string]int{}
	t.Run("at", func(t *testing.T) {
		for n := 1; n < total; n++ {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				base := fmt.Sprintf("/opt/k%d", n)
				kw := killWorld(t, w, base)
				if at := applyKilledAt(t, kw, n); at == 0 {
					t.Fatalf("apply ended before its journal line %d of %d", n, total)
				} else if at != n {
					t.Logf("killed at journal line %d (two lines shared an fsync)", at)
				}
				var r result
				count := func(name string) int { return logCounts(kw, base)[name] }
				reported := map[string]bool{}
				for attempt := 0; ; attempt++ {
					if attempt == 5 {
						t.Fatalf("not done after 5 resumes: %s", r)
					}
					args := []string{"resume", "-no-color"}
					if _, err := journal.Latest(kw.stateDir()); err != nil {
						args = []string{"apply", "-auto-approve", "-no-color"} // killed before the run existed
					}
					before := logCounts(kw, base)
					r = kw.upgrader(args...)
					if r.code == 0 {
						break
					}
					m := retryRe.FindStringSubmatch(r.stderr)
					if r.code != 2 || m == nil {
						t.Fatalf("%v: %s", args, r)
					}
					node := strings.TrimPrefix(m[1], "step.")
					if reported[node] {
						t.Fatalf("%s reported twice: %s", node, r)
					}
					reported[node] = true
					// Refused: nothing ran again without -retry.
					for k, v := range before {
						if count(k) != v {
							t.Fatalf("a refused resume ran %s again (%d -> %d)", k, v, count(k))
						}
					}
					if r = kw.upgrader("resume", "-no-color", "-retry", m[1]); r.code == 0 {
						break
					}
				}
				counts := logCounts(kw, base)
				count = func(name string) int { return counts[name] }
				for _, name := range []string{"one", "three"} {
					want := "1"
					if reported[name] {
						want = "1 or 2 (reported, retried)"
					}
					if c := count(name); c != 1 && !(reported[name] && c == 2) {
						t.Errorf("step %s ran %d times, want %s", name, c, want)
					}
				}
				if c := count("two"); c < 1 || c > 2 {
					t.Errorf("idempotent run of step two ran %d times", c)
				}
				if got := counts["app.conf"]; got != 2 {
					t.Errorf("uploaded file: version %d", got)
				}
				run, _ := journal.Latest(kw.stateDir())
				if rs, err := executor.Replay(kw.stateDir(), run); err != nil || rs.Outcome != executor.OutcomeDone {
					t.Errorf("replay: %v %+v", err, rs)
				}
				mu.Lock()
				for k := range reported {
					retried[k]++
				}
				mu.Unlock()
			})
		}
	})
	t.Logf("kill points whose resume reported an action as possibly run and needed -retry: %v", retried)
}

// hostCatW reads a file on host web ("" when missing).
func hostCatW(w *world, p string) string {
	out, _ := w.bed.Host("web").Exec(t0(), "cat "+p+" 2>/dev/null || true")
	return strings.TrimSpace(out)
}

// killRollbackProcedure is killProcedure with a last step that fails and an
// undo for step one (a rollback block), so the run rolls back: two undone
// by restoring the file, one by its rollback block.
var killRollbackProcedure = strings.Replace(killProcedure, `    command = "echo ran >> BASE/one.log"
  }
}`, `    command = "echo ran >> BASE/one.log"
  }
  rollback {
    run {
      command = "echo ran >> BASE/undo.log"
    }
  }
}`, 1) + `
step "four" {
  host            = host.web
  backup_required = false
  depends_on      = [step.three]
  run {
    command = "exit 3"
  }
}
`

// TestKill_everyRollbackLineThenResume: the same kill after each journal
// line from the failure on (the rollback's own steps), then resume: the
// rollback is finished, each undo ran once (an undo in flight at the kill
// may run again: undos are written to be repeatable), the file is back to
// its old content and the run replays as rolled back.
func TestKill_everyRollbackLineThenResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	cal := killWorldOf(t, w, "/opt/rcal", killRollbackProcedure)
	if r := cal.upgrader("apply", "-auto-approve", "-no-color"); r.code != 1 {
		t.Fatalf("undisturbed apply should fail and roll back: %s", r)
	}
	total, first := journalLines(cal), 0
	for i, ev := range cal.events() {
		if ev.Type == journal.NodeFailed && first == 0 {
			first = i + 1
		}
	}
	if first == 0 {
		t.Fatal("no node_failed in the journal")
	}
	t.Logf("a failing apply writes %d journal lines, the failure at line %d", total, first)
	sem := make(chan struct{}, 3)
	t.Run("at", func(t *testing.T) {
		for n := first; n < total; n++ {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				base := fmt.Sprintf("/opt/r%d", n)
				kw := killWorldOf(t, w, base, killRollbackProcedure)
				if at := applyKilledAt(t, kw, n); at == 0 {
					t.Fatalf("apply ended before its journal line %d of %d", n, total)
				}
				r := kw.upgrader("resume", "-no-color")
				if r.code != 0 && r.code != 1 {
					t.Fatalf("resume: %s", r)
				}
				run, _ := journal.Latest(kw.stateDir())
				if rs, err := executor.Replay(kw.stateDir(), run); err != nil || rs.Outcome != executor.OutcomeRolledBack {
					t.Errorf("replay: %v %+v\n%s", err, rs, r)
				}
				counts := logCounts(kw, base)
				if got := counts["app.conf"]; got != 1 {
					t.Errorf("file after the rollback: version %d", got)
				}
				if c := counts["undo"]; c < 1 || c > 2 {
					t.Errorf("step one's rollback block ran %d times", c)
				} else if c == 2 {
					t.Logf("step one's rollback block ran twice (in flight at the kill)")
				}
				for _, name := range []string{"one", "three"} {
					if c := counts[name]; c != 1 {
						t.Errorf("step %s ran %d times", name, c)
					}
				}
			})
		}
	})
}

// logCounts reads, in one round trip, how often each logging action ran
// (NAME.log lines) and the version in data/app.conf (key "app.conf").
func logCounts(w *world, base string) map[string]int {
	out, _ := w.bed.Host("web").Exec(t0(), fmt.Sprintf(`cd %s && for f in one two three undo; do echo "$f $(cat $f.log 2>/dev/null | wc -l)"; done; echo "app.conf $(sed -n 's/^version = //p' data/app.conf)"`, base))
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var k string
		var v int
		fmt.Sscan(l, &k, &v)
		m[k] = v
	}
	return m
}
