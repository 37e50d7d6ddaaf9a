package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// tmigrate is a module node that records undo state, can fail, and undoes
// itself (like migrate); it checkpoints and recalls a counter, reports
// progress and returns a sensitive output.
type tmigrate struct {
	tr       *trace
	applies  atomic.Int32
	recalled atomic.Int32
}

func (*tmigrate) Kind() string { return "tmigrate" }
func (*tmigrate) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"fail":   &hcldec.AttrSpec{Name: "fail", Type: cty.Bool},
		"secret": &hcldec.AttrSpec{Name: "secret", Type: cty.String},
	}
}
func (*tmigrate) Outputs() map[string]cty.Type {
	return map[string]cty.Type{"to": cty.Number, "secret": cty.String}
}
func (*tmigrate) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.Update, Summary: "migrate"}, nil
}
func (m *tmigrate) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	m.applies.Add(1)
	var n int
	if ok, _ := req.Env.Recall(req.Node+"/n", &n); ok {
		m.recalled.Store(int32(n))
	}
	if err := req.Env.Checkpoint(req.Node+"/n", n+1); err != nil {
		return nil, err
	}
	req.Env.Progress(50, 100)
	if err := req.Record(json.RawMessage(`{"from":6}`)); err != nil {
		return nil, err
	}
	if modules.GetBool(req.Config.Value, "fail", false) {
		m.tr.add("migrate-fail %s", req.Node)
		return nil, errors.New("migration 7 failed")
	}
	m.tr.add("migrate %s", req.Node)
	secret := cty.StringVal(modules.GetString(req.Config.Value, "secret")).Mark(lang.SensitiveMark)
	return &modules.Outcome{Changed: true, Outputs: map[string]cty.Value{"to": cty.NumberIntVal(7), "secret": secret}}, nil
}
func (m *tmigrate) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	m.tr.add("migrate-undo %s %s", req.Node, state)
	return nil
}

// flaky fails its first `fails` calls.
type flaky struct{ calls atomic.Int32 }

func (*flaky) Kind() string { return "flaky" }
func (*flaky) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"fails": &hcldec.AttrSpec{Name: "fails", Type: cty.Number, Required: true}}
}
func (f *flaky) Check(ctx context.Context, req *modules.Request) error {
	if int(f.calls.Add(1)) <= modules.GetInt(req.Config.Value, "fails", 0) {
		return errors.New("not yet")
	}
	return nil
}

func TestApply_moduleNodeUndoAndCheckRetries(t *testing.T) {
	w := newWorld()
	mig, fl := &tmigrate{tr: w.tr}, &flaky{}
	w.reg.RegisterNode(mig)
	w.reg.RegisterProbe(fl)
	src := `
host "web" { address = "198.51.100.10" }
variable "pw" {
  type = string
  sensitive = true
  default = "pa55word-xyz"
}
tmigrate "db" {
  secret = var.pw
}
check "ready" {
  depends_on = [tmigrate.db]
  retries  = 3
  interval = "1ms"
  flaky { fails = 2 }
}
tmigrate "later" {
  depends_on = [check.ready]
  fail = true
}
`
	opts := w.opts(t, w.load(t, src))
	var progress atomic.Int32
	opts.Observer = func(ev Event) {
		if ev.Type == EvProgress && ev.Done == 50 {
			progress.Add(1)
		}
	}
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "tmigrate.later" {
		t.Fatalf("%s %s %s", sum.Outcome, sum.Failed, sum.Error)
	}
	if fl.calls.Load() != 3 {
		t.Errorf("check probed %d times, want 3 (2 failures, then a pass)", fl.calls.Load())
	}
	tr := strings.Join(w.tr.get(), "|")
	// the failed node recorded undo state before failing: undone first
	if want := `migrate tmigrate.db|migrate-fail tmigrate.later|migrate-undo tmigrate.later {"from":6}|migrate-undo tmigrate.db {"from":6}`; tr != want {
		t.Errorf("trace\n got %s\nwant %s", tr, want)
	}
	if progress.Load() == 0 {
		t.Error("no progress event")
	}
	raw, _ := os.ReadFile(journal.Path(opts.StateDir, sum.Run))
	if strings.Contains(string(raw), "pa55word") {
		t.Error("a sensitive output reached the journal")
	}
	rs, _ := Replay(opts.StateDir, sum.Run)
	if to := rs.Outputs["tmigrate.db"]["to"]; !to.RawEquals(cty.NumberIntVal(7)) {
		t.Errorf("journaled output to = %#v", to)
	}
	if len(rs.Checkpoints) != 2 {
		t.Errorf("checkpoints %v", rs.Checkpoints)
	}
}

// Checkpoints written before a crash come back through Recall on resume;
// a module node not known to be safe is repeated only with -retry.
func TestResume_checkpointsRecalled(t *testing.T) {
	w := newWorld()
	mig := &tmigrate{tr: w.tr}
	w.reg.RegisterNode(mig)
	src := `
host "web" { address = "198.51.100.10" }
tmigrate "db" {}
step "after" {
  host = host.web
  backup_required = false
  depends_on = [tmigrate.db]
  mark {
    text = "a"
    block = true
    safe = true
  }
}
`
	opts := w.opts(t, w.load(t, src))
	ctx, cancel := context.WithCancel(context.Background())
	opts.Observer = func(ev Event) {
		if ev.Type == journal.ActionStarted {
			cancel()
		}
	}
	sum, _ := Apply(ctx, opts)
	if sum.Outcome != OutcomeInterrupted {
		t.Fatal(sum.Outcome)
	}
	// Make tmigrate.db look in flight again (as after a crash inside it).
	f, _ := os.OpenFile(journal.Path(opts.StateDir, sum.Run), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"ts":"2026-11-28T10:00:00Z","type":"node_started","node":"tmigrate.db","data":{"kind":"tmigrate"}}` + "\n")
	f.Close()
	opts.Observer = nil
	opts.Config = w.load(t, strings.Replace(src, "block = true", "block = false", 1))
	_, err := Resume(context.Background(), opts, sum.Run, ResumeOptions{Force: true})
	var ue *UnsafeResumeError
	if !errors.As(err, &ue) || ue.Node != "tmigrate.db" {
		t.Fatalf("resume: %v", err)
	}
	sum2, err := Resume(context.Background(), opts, sum.Run, ResumeOptions{Force: true, Retry: "tmigrate.db"})
	if err != nil || sum2.Outcome != OutcomeDone {
		t.Fatalf("%v %+v", err, sum2)
	}
	if mig.applies.Load() != 2 || mig.recalled.Load() != 1 {
		t.Errorf("applies %d, recalled %d: want 2 and the checkpoint of the first (1)", mig.applies.Load(), mig.recalled.Load())
	}
	if w.hosts.log("web") != "a\n" {
		t.Errorf("/log %q", w.hosts.log("web"))
	}
}

// upgrader died during a rollback: resume finishes the rollback.
func TestResume_finishesInterruptedRollback(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.loadFile(t, "six_steps.hcl"))
	ctx, cancel := context.WithCancel(context.Background())
	opts.Observer = func(ev Event) {
		if ev.Type == journal.UndoFinished && ev.Node == "step.s3" && ev.Index == nil {
			cancel() // stop right after s3 was undone
		}
	}
	sum, _ := Apply(ctx, opts)
	if sum.Outcome != OutcomeInterrupted {
		t.Fatalf("outcome %s", sum.Outcome)
	}
	if got := w.hosts.log("web"); got != "1\n2\n" {
		t.Fatalf("/log after the interrupted rollback = %q", got)
	}
	opts.Observer = nil
	sum2, err := Resume(context.Background(), opts, sum.Run, ResumeOptions{})
	if err != nil || sum2.Outcome != OutcomeRolledBack {
		t.Fatalf("%v %+v", err, sum2)
	}
	if got := w.hosts.log("web"); got != "" {
		t.Fatalf("/log = %q", got)
	}
}

func TestApply_gateDeclinedOnTerminal(t *testing.T) {
	w := newWorld()
	opts := w.opts(t, w.load(t, `gate "go" { message = "sure?" }`))
	opts.Prompt = func(ctx context.Context, q string) (bool, error) { return false, nil }
	sum, _ := Apply(context.Background(), opts)
	if sum.Failed != "gate.go" || !strings.Contains(sum.Error, "declined") {
		t.Fatalf("%+v", sum)
	}
	opts.Prompt = func(ctx context.Context, q string) (bool, error) { return true, nil }
	opts.StateDir += "2"
	sum, _ = Apply(context.Background(), opts)
	if sum.Outcome != OutcomeDone {
		t.Fatalf("%+v", sum)
	}
}

// panicky panics in Apply.
type panicky struct{}

func (*panicky) Kind() string                 { return "panicky" }
func (*panicky) Spec() hcldec.Spec            { return &hcldec.ObjectSpec{} }
func (*panicky) Outputs() map[string]cty.Type { return nil }
func (*panicky) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.NoOp}, nil
}
func (*panicky) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	var m map[string]int
	m["boom"]++
	return nil, nil
}

// A module that panics fails its node; the run is rolled back, no crash.
func TestApply_panickingModuleRollsBack(t *testing.T) {
	w := newWorld()
	w.reg.RegisterNode(&panicky{})
	src := `
host "web" { address = "198.51.100.10" }
step "a" {
  host = host.web
  backup_required = false
  mark { text = "a" }
}
panicky "p" {
  depends_on = [step.a]
}
`
	opts := w.opts(t, w.load(t, src))
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "panicky.p" || !strings.Contains(sum.Error, "panic") {
		t.Fatalf("%s %s %s", sum.Outcome, sum.Failed, sum.Error)
	}
	if w.hosts.log("web") != "" {
		t.Errorf("/log = %q", w.hosts.log("web"))
	}
}

// The events a failing run shows, in order (docs/JSON.md): the views and
// -json rely on this sequence.
func TestApply_eventSequenceOfARollback(t *testing.T) {
	w := newWorld()
	src := `
host "web" { address = "198.51.100.10" }
phase "p" {
  step "a" {
    host = host.web
    backup_required = false
    mark { text = "a" }
  }
  step "b" {
    host = host.web
    backup_required = false
    depends_on = [step.a]
    mark {
      text = "b"
      fail = true
    }
  }
}
`
	opts := w.opts(t, w.load(t, src))
	var seq []string
	opts.Observer = func(ev Event) {
		s := ev.Type
		if ev.Node != "" {
			s += " " + ev.Node
		}
		if ev.Host != "" {
			s += "@" + ev.Host
		}
		seq = append(seq, s)
	}
	if _, err := Apply(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"run_started",
		"node_started step.a", "action_started step.a@web", "action_finished step.a@web", "node_output step.a", "node_finished step.a",
		"node_started step.b", "action_started step.b@web", "node_failed step.b",
		"rollback_started step.b",
		"undo_started step.b", "undo_started step.b@web", "undo_finished step.b@web", "undo_finished step.b",
		"undo_started step.a", "undo_started step.a@web", "undo_finished step.a@web", "undo_finished step.a",
		"run_finished", "summary",
	}
	if strings.Join(seq, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n got %q\nwant %q", seq, want)
	}
}
