package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
)

func (w *testWorld) loadFile(t testing.TB, name string, extra ...string) *lang.Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return w.load(t, string(src)+"\n"+strings.Join(extra, "\n"))
}

func nodeStates(s *Summary) map[string]string {
	m := map[string]string{}
	for _, n := range s.Nodes {
		m[n.Node] = n.State
	}
	return m
}

func TestApply_failureUndoesPhaseNewestFirst(t *testing.T) {
	w := newWorld()
	cfg := w.loadFile(t, "six_steps.hcl")
	opts := w.opts(t, cfg)
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.ExitCode != 1 || sum.Failed != "step.s4" {
		t.Fatalf("outcome %s exit %d failed %s (%s)", sum.Outcome, sum.ExitCode, sum.Failed, sum.Error)
	}
	want := []string{"do 1@web", "do 2@web", "do 3a@web", "do 3b@web", "do 4a@web", "fail 4b@web",
		// 4b recorded its undo state before failing: it is undone too, then 4a, 3, 2, 1
		"undo 4b@web", "undo 4a@web", "undo 3b@web", "undo 3a@web", "undo 2@web", "undo 1@web"}
	if got := w.tr.get(); !reflect.DeepEqual(got, want) {
		t.Fatalf("trace\n got %q\nwant %q", got, want)
	}
	if got := w.hosts.log("web"); got != "" {
		t.Errorf("/log after rollback = %q, want empty", got)
	}
	st := nodeStates(sum)
	for _, n := range []string{"step.s1", "step.s2", "step.s3"} {
		if st[n] != StateUndone {
			t.Errorf("%s = %s, want undone", n, st[n])
		}
	}
	if st["step.s5"] != StatePending || st["step.s6"] != StatePending {
		t.Errorf("s5/s6 ran after the failure: %v", st)
	}
	// The journal alone tells the same story.
	rs, err := Replay(opts.StateDir, sum.Run)
	if err != nil || rs.Outcome != OutcomeRolledBack || rs.Nodes["step.s1"].State != StateUndone {
		t.Fatalf("replay: %v %+v", err, rs)
	}
	if _, err := journal.ReadLock(opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock left behind: %v", err)
	}
}

func TestApply_success(t *testing.T) {
	w := newWorld()
	cfg := w.loadFile(t, "six_steps.hcl")
	opts := w.opts(t, cfg)
	opts.Config = w.load(t, strings.Replace(mustRead(t, "six_steps.hcl"), "default = true", "default = false", 1))
	sum, err := Apply(context.Background(), opts)
	if err != nil || sum.Outcome != OutcomeDone || sum.ExitCode != 0 {
		t.Fatalf("%v %+v", err, sum)
	}
	if got := w.hosts.log("web"); got != "1\n2\n3a\n3b\n4a\n4b\n5\n6\n" {
		t.Fatalf("/log = %q", got)
	}
}

func mustRead(t testing.TB, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApply_escalationRollsBackEarlierPhase(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.loadFile(t, "escalate.hcl"))
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s: %s", sum.Outcome, sum.Error)
	}
	tr := strings.Join(w.tr.get(), "|")
	// phase second undone first (rollback block of web_upgrade), then the
	// regression check fails, so phase first is undone too.
	want := "undo verify@web|note restart-old-web@web|check check.regression|undo db@db"
	if !strings.Contains(tr, want) {
		t.Fatalf("trace %s\nwant it to contain %s", tr, want)
	}
	if w.hosts.log("db") != "" {
		t.Errorf("db /log = %q: the earlier phase was not rolled back", w.hosts.log("db"))
	}
}

func TestApply_escalationNotNeeded(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.loadFile(t, "escalate.hcl"))
	opts.Config = w.load(t, strings.Replace(mustRead(t, "escalate.hcl"), "default = false", "default = true", 1))
	sum, _ := Apply(context.Background(), opts)
	if sum.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s", sum.Outcome)
	}
	if w.hosts.log("db") != "db\n" {
		t.Errorf("db /log = %q: phase first was undone although the checks pass", w.hosts.log("db"))
	}
	if st := nodeStates(sum); st["step.web_upgrade"] != StateUndone || st["step.db_upgrade"] != StateDone {
		t.Errorf("states %v", st)
	}
}

func TestApply_onFailureStopLeavesAsIs(t *testing.T) {
	w := newWorld()
	src := strings.Replace(mustRead(t, "six_steps.hcl"), `phase "main" {`, "phase \"main\" {\n  on_failure = \"stop\"", 1)
	opts := w.opts(t, w.load(t, src))
	sum, _ := Apply(context.Background(), opts)
	if sum.Outcome != OutcomeFailed || sum.ExitCode != 1 {
		t.Fatalf("outcome %s", sum.Outcome)
	}
	if got := w.hosts.log("web"); got != "1\n2\n3a\n3b\n4a\n" {
		t.Errorf("/log = %q", got)
	}
}

func TestApply_outsidePhaseUndoesWholeRun(t *testing.T) {
	w := newWorld()
	src := mustRead(t, "escalate.hcl") + `
step "after" {
  host       = host.db
  depends_on = [step.db_upgrade]
  backup_required = false
  mark {
    text = "after"
    fail = true
  }
}
`
	src = strings.Replace(src, "fail = true\n    }\n  }\n}", "fail = false\n    }\n  }\n}", 1)
	opts := w.opts(t, w.load(t, src))
	sum, _ := Apply(context.Background(), opts)
	if sum.Failed != "step.after" || sum.Outcome != OutcomeRolledBack {
		t.Fatalf("failed %s outcome %s: %s", sum.Failed, sum.Outcome, sum.Error)
	}
	// web_upgrade's rollback block (a note) stands for its undo
	tr := strings.Join(w.tr.get(), "|")
	if w.hosts.log("db") != "" || !strings.HasSuffix(tr, "undo db@db") || !strings.Contains(tr, "undo after@db") || !strings.Contains(tr, "note restart-old-web@web") {
		t.Errorf("whole run not undone newest first: db %q, trace %s", w.hosts.log("db"), tr)
	}
}

func TestApply_undoRetriedThenIncomplete(t *testing.T) {
	w := newWorld()
	w.mark.undoFail["2"] = 100
	opts := w.opts(t, w.loadFile(t, "six_steps.hcl"))
	opts.UndoAttempts = 3
	sum, _ := Apply(context.Background(), opts)
	if sum.Outcome != OutcomeRollbackIncomplete || sum.ExitCode != 3 {
		t.Fatalf("outcome %s exit %d", sum.Outcome, sum.ExitCode)
	}
	n := 0
	for _, l := range w.tr.get() {
		if l == "undo-fail 2@web" {
			n++
		}
		if l == "undo 1@web" {
			t.Error("step s1 was undone after s2's undo failed")
		}
	}
	if n != 3 {
		t.Errorf("undo of 2 tried %d times, want 3", n)
	}
	if len(sum.Left) != 2 || !strings.HasPrefix(sum.Left[0], "step.s2 (undo failed") || !strings.HasPrefix(sum.Left[1], "step.s1") {
		t.Errorf("left = %q", sum.Left)
	}
}

func TestApply_undoRetrySucceeds(t *testing.T) {
	w := newWorld()
	w.mark.undoFail["2"] = 2
	opts := w.opts(t, w.loadFile(t, "six_steps.hcl"))
	sum, _ := Apply(context.Background(), opts)
	if sum.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s", sum.Outcome)
	}
	if w.hosts.log("web") != "" {
		t.Errorf("/log = %q", w.hosts.log("web"))
	}
}

func TestApply_whenSkips(t *testing.T) {
	w := newWorld()
	src := `
host "web" { address = "198.51.100.10" }
check "probe" {
  ok { ok = true }
}
step "a" {
  host = host.web
  backup_required = false
  when = !check.probe.passed
  mark { text = "a" }
}
step "b" {
  host = host.web
  backup_required = false
  when = check.probe.passed && !step.a.changed
  mark { text = "b" }
}
`
	opts := w.opts(t, w.load(t, src))
	p, err := MakePlan(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Nodes {
		if n.Addr == "step.a" && !strings.Contains(n.When, "known after check.probe") {
			t.Errorf("plan when of step.a = %q", n.When)
		}
	}
	sum, _ := Apply(context.Background(), opts)
	st := nodeStates(sum)
	if sum.Outcome != OutcomeDone || st["step.a"] != StateSkipped || st["step.b"] != StateDone {
		t.Fatalf("%s %v", sum.Outcome, st)
	}
	if w.hosts.log("web") != "b\n" {
		t.Errorf("/log = %q", w.hosts.log("web"))
	}
}

func TestApply_interlockRefusesUnprotectedHost(t *testing.T) {
	w := newWorld()
	src := `
host "web" { address = "198.51.100.10" }
host "db" { address = "198.51.100.11" }
tbackup "db" { host = host.db }
step "a" {
  host = host.web
  depends_on = [tbackup.db]
  mark { text = "a" }
}
`
	opts := w.opts(t, w.load(t, src))
	sum, _ := Apply(context.Background(), opts)
	if sum.Failed != "step.a" || !strings.Contains(sum.Error, `host web`) || !strings.Contains(sum.Error, "backup_required = false") {
		t.Fatalf("failed %q: %s", sum.Failed, sum.Error)
	}
	if w.hosts.log("web") != "" {
		t.Error("the step ran without a backup")
	}
	// the same with a backup of web passes
	w2 := newWorld()
	opts2 := w2.opts(t, w2.load(t, strings.Replace(src, "host = host.db }", "host = host.web }", 1)))
	if sum, _ := Apply(context.Background(), opts2); sum.Outcome != OutcomeDone {
		t.Fatalf("with a backup: %s %s", sum.Outcome, sum.Error)
	}
}

func TestApply_lockedSecondRun(t *testing.T) {
	w := newWorld()
	src := `
host "web" { address = "198.51.100.10" }
gate "hold" { message = "wait" }
`
	opts := w.opts(t, w.load(t, src))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan string, 1)
	opts.Observer = func(ev Event) {
		if ev.Type == EvWaiting {
			started <- ev.Run
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Apply(ctx, opts)
	}()
	run := <-started
	opts2 := opts
	opts2.Observer = nil
	_, err := Apply(context.Background(), opts2)
	var le *journal.LockedError
	if !errors.As(err, &le) || le.Holder.Run != run {
		t.Fatalf("second apply: %v", err)
	}
	// resume and rollback take the lock before they read the journal: the
	// live run's lock is their answer, not what its journal says so far
	opts3 := opts2
	opts3.Config = w.load(t, src+"\n# changed\n")
	if _, err := Resume(context.Background(), opts3, run, ResumeOptions{}); !errors.As(err, &le) {
		t.Fatalf("resume of a live run: %v", err)
	}
	if _, err := Rollback(context.Background(), opts3, run); !errors.As(err, &le) {
		t.Fatalf("rollback of a live run: %v", err)
	}
	if _, err := journal.Approve(opts.StateDir, run, "gate.hold", "tester@here"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rs, _ := Replay(opts.StateDir, run)
	if rs.Outcome != OutcomeDone {
		t.Fatalf("after approval: %s", rs.Outcome)
	}
	out := rs.Outputs["gate.hold"]["approved_by"]
	if out.AsString() != "tester@here" {
		t.Errorf("approved_by = %v", out)
	}
}

func TestResume_completedNodesNotRerun(t *testing.T) {
	w := newWorld()
	src := strings.Replace(mustRead(t, "six_steps.hcl"), "fail = var.fail", "block = var.fail", 1)
	cfg := w.load(t, src)
	opts := w.opts(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	opts.Observer = func(ev Event) {
		if ev.Type == journal.ActionStarted && ev.Node == "step.s4" && ev.Index != nil && *ev.Index == 1 {
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		}
	}
	sum, err := Apply(ctx, opts)
	if err != nil || sum.Outcome != OutcomeInterrupted {
		t.Fatalf("%v %+v", err, sum)
	}
	// mark is not Repeatable and not in the safe list: resume must refuse s4
	opts.Observer = nil
	cfg2 := w.load(t, strings.Replace(src, "default = true", "default = false", 1))
	opts.Config = cfg2
	_, err = Resume(context.Background(), opts, sum.Run, ResumeOptions{Force: true})
	var ue *UnsafeResumeError
	if !errors.As(err, &ue) || ue.Node != "step.s4" || !strings.Contains(err.Error(), "-retry step.s4") {
		t.Fatalf("resume: %v", err)
	}
	_, err = Resume(context.Background(), opts, sum.Run, ResumeOptions{})
	var ce *ConfigChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("resume with another config: %v", err)
	}
	w.tr.mu.Lock()
	w.tr.lines = nil
	w.tr.mu.Unlock()
	sum2, err := Resume(context.Background(), opts, sum.Run, ResumeOptions{Force: true, Retry: "step.s4"})
	if err != nil || sum2.Outcome != OutcomeDone {
		t.Fatalf("resume -retry: %v %+v", err, sum2)
	}
	if got, want := w.tr.get(), []string{"do 4b@web", "do 5@web", "do 6@web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after resume ran %q, want %q", got, want)
	}
	if got := w.hosts.log("web"); got != "1\n2\n3a\n3b\n4a\n4b\n5\n6\n" {
		t.Errorf("/log = %q", got)
	}
	if _, err := Resume(context.Background(), opts, sum.Run, ResumeOptions{Force: true}); err == nil {
		t.Error("resumed a finished run")
	}
}

func TestRollback_finishedRun(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.load(t, strings.Replace(mustRead(t, "six_steps.hcl"), "default = true", "default = false", 1)))
	sum, _ := Apply(context.Background(), opts)
	if sum.Outcome != OutcomeDone {
		t.Fatal(sum.Outcome)
	}
	w.tr.mu.Lock()
	w.tr.lines = nil
	w.tr.mu.Unlock()
	sum2, err := Rollback(context.Background(), opts, sum.Run)
	if err != nil || sum2.Outcome != OutcomeRolledBack {
		t.Fatalf("%v %+v", err, sum2)
	}
	want := []string{"undo 6@web", "undo 5@web", "undo 4b@web", "undo 4a@web", "undo 3b@web", "undo 3a@web", "undo 2@web", "undo 1@web"}
	if got := w.tr.get(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
	if w.hosts.log("web") != "" {
		t.Errorf("/log = %q", w.hosts.log("web"))
	}
}

func TestPlan_savedPlanStale(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.loadFile(t, "six_steps.hcl"))
	p, err := MakePlan(context.Background(), opts)
	if err != nil || len(p.Errors) > 0 {
		t.Fatalf("%v %v", err, p.Errors)
	}
	file := filepath.Join(t.TempDir(), "plan.json")
	if err := p.Save(file, opts); err != nil {
		t.Fatal(err)
	}
	sp, ok, err := LoadSavedPlan(file)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	p2, _ := MakePlan(context.Background(), opts)
	if d := sp.Stale(p2); len(d) != 0 {
		t.Fatalf("fresh plan judged stale: %q", d)
	}
	tgt, _ := w.hosts.Target(context.Background(), opts.Config.Hosts["web"])
	tgt.WriteFile(context.Background(), "/log", strings.NewReader("changed behind our back\n"), 0o644)
	p3, _ := MakePlan(context.Background(), opts)
	d := sp.Stale(p3)
	if len(d) == 0 || !strings.Contains(d[0], "step.s1 web #1: sha256 /log was") {
		t.Fatalf("differences = %q", d)
	}
}

func TestPlan_offlineTouchesNoHost(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.loadFile(t, "escalate.hcl"))
	opts.Hosts = nil
	p, err := MakePlan(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.hosts.m) != 0 {
		t.Fatal("offline plan contacted a host")
	}
	var phases []string
	for _, n := range p.Nodes {
		phases = append(phases, n.Phase+":"+n.Addr)
		if n.Addr == "step.web_upgrade" && (len(n.Rollback) != 1 || n.Undo != "the rollback block") {
			t.Errorf("web_upgrade rollback %q undo %q", n.Rollback, n.Undo)
		}
	}
	want := ":tbackup.db :tbackup.web first:step.db_upgrade second:step.web_upgrade second:step.web_verify :check.regression"
	if got := strings.Join(phases, " "); got != want {
		t.Errorf("order %s\nwant  %s", got, want)
	}
}

// Issue 13.12: an empty journal (a run that never recorded its start) is
// refused by resume (even -force), rollback and status, with a clear
// message: before, status showed "started 0001-01-01" and resume -force
// re-took the original backup under the same id.
func TestResume_emptyJournalRefused(t *testing.T) {
	w := newWorld()
	cfg := w.loadFile(t, "six_steps.hcl")
	opts := w.opts(t, cfg)
	id := "20261128T101500-abcd"
	if err := os.MkdirAll(journal.RunDir(opts.StateDir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal.Path(opts.StateDir, id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var ee *journal.EmptyError
	if _, err := Resume(context.Background(), opts, id, ResumeOptions{Force: true}); !errors.As(err, &ee) {
		t.Fatalf("resume -force of an empty journal: %v", err)
	}
	if _, err := Rollback(context.Background(), opts, id); !errors.As(err, &ee) {
		t.Fatalf("rollback of an empty journal: %v", err)
	}
	if _, err := RunStatus(opts.StateDir, id, cfg); !errors.As(err, &ee) {
		t.Fatalf("status of an empty journal: %v", err)
	}
	if got := w.tr.get(); len(got) != 0 {
		t.Fatalf("hosts were touched: %q", got)
	}
	if b, _ := os.ReadFile(journal.Path(opts.StateDir, id)); len(b) != 0 {
		t.Fatalf("the empty journal was written to: %q", b)
	}
}
