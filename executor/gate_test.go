package executor

import (
	"context"
	"os"
	"os/user"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

const gateSrc = `
host "web" { address = "198.51.100.10" }
phase "main" {
  step "s1" {
    host            = host.web
    backup_required = false
    mark { text = "1" }
  }
  gate "go" {
    depends_on = [step.s1]
    %s
  }
  step "s2" {
    host            = host.web
    backup_required = false
    depends_on      = [gate.go]
    mark { text = "2" }
  }
}
`

// runGate applies gateSrc with the gate's attributes, calling decide with
// the run id once the gate waits; it returns the summary and the events.
func runGate(t *testing.T, attrs string, decide func(stateDir, run string)) (*Summary, []Event) {
	t.Helper()
	w := newWorld()
	opts := w.opts(t, w.load(t, strings.Replace(gateSrc, "%s", attrs, 1)))
	evs := make(chan Event, 100)
	opts.Observer = func(ev Event) {
		evs <- ev
		if ev.Type == EvWaiting && decide != nil {
			go decide(opts.StateDir, ev.Run)
		}
	}
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	close(evs)
	var all []Event
	for ev := range evs {
		all = append(all, ev)
	}
	if got := w.tr.get(); sum.Outcome == OutcomeRolledBack && !reflect.DeepEqual(got, []string{"do 1@web", "undo 1@web"}) {
		t.Errorf("trace %q: the step before the gate must be undone, the one after never run", got)
	}
	return sum, all
}

func eventOf(evs []Event, typ string) *Event {
	for i := range evs {
		if evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

// upgrader reject: the run fails at the gate and rolls its phase back.
func TestGate_rejectRollsBackPhase(t *testing.T) {
	sum, evs := runGate(t, "", func(stateDir, run string) {
		if _, err := journal.Decide(stateDir, run, "gate.go", journal.Approval{By: "alice@ops1", Decision: journal.DecisionRejected, Reason: "change board said no"}); err != nil {
			t.Error(err)
		}
	})
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "gate.go" || !strings.Contains(sum.Error, "rejected by alice@ops1: change board said no") {
		t.Fatalf("outcome %s failed %s error %q", sum.Outcome, sum.Failed, sum.Error)
	}
	if ev := eventOf(evs, journal.Rejected); ev == nil || ev.Message != "by alice@ops1: change board said no" {
		t.Errorf("rejected event %+v", ev)
	}
	if ev := eventOf(evs, EvWaiting); ev == nil || !strings.Contains(ev.Message, "upgrader reject") {
		t.Errorf("waiting does not say how to reject: %+v", ev)
	}
}

// timeout with on_timeout: reject fails the gate, approve lets the run go on.
func TestGate_timeout(t *testing.T) {
	sum, _ := runGate(t, `timeout = "200ms"`, nil)
	if sum.Outcome != OutcomeRolledBack || !strings.Contains(sum.Error, "rejected by timeout") {
		t.Errorf("reject on timeout: %s %q", sum.Outcome, sum.Error)
	}
	sum, evs := runGate(t, `timeout = "200ms"
    on_timeout = "approve"`, nil)
	if sum.Outcome != OutcomeDone {
		t.Errorf("approve on timeout: %s %q", sum.Outcome, sum.Error)
	}
	if ev := eventOf(evs, journal.Approved); ev == nil || !strings.Contains(ev.Message, "timeout") {
		t.Errorf("approved event %+v", ev)
	}
}

// approvers: a decision by someone else is ignored (and said so); one by an approver counts.
func TestGate_approvers(t *testing.T) {
	me, _ := user.Current()
	name := "someone"
	if me != nil && me.Username == name {
		name = "someone-else"
	}
	sum, evs := runGate(t, `approvers = ["bob"]`, func(stateDir, run string) {
		if _, err := journal.Decide(stateDir, run, "gate.go", journal.Approval{By: name + "@ops1"}); err != nil {
			t.Error(err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := journal.Decide(stateDir, run, "gate.go", journal.Approval{By: name + "@ops1", As: "bob"}); err != nil {
			t.Error(err)
		}
	})
	if sum.Outcome != OutcomeDone {
		t.Fatalf("outcome %s %q", sum.Outcome, sum.Error)
	}
	ignored := false
	for _, ev := range evs {
		if ev.Type == EvLog && strings.Contains(ev.Message, "ignoring the decision of "+name+"@ops1") {
			ignored = true
		}
	}
	if !ignored {
		t.Error("the decision of a non-approver was not reported as ignored")
	}
	if ev := eventOf(evs, journal.Approved); ev == nil || ev.Message != "by bob ("+name+"@ops1)" {
		t.Errorf("approved event %+v", ev)
	}
}

// A decision is final: the opposite one is refused.
func TestDecide_final(t *testing.T) {
	dir := t.TempDir()
	run := "20261201T000000-abcd"
	if err := osMkdirAll(journal.RunDir(dir, run)); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Decide(dir, run, "gate.go", journal.Approval{By: "a@x", Decision: journal.DecisionRejected, Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Approve(dir, run, "gate.go", "b@x"); err == nil || !strings.Contains(err.Error(), "rejected already by a@x") {
		t.Errorf("approving a rejected gate: %v", err)
	}
}

func osMkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }
