package modtest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
)

// Contract is one case of the action suite: an action and a block that
// changes the host, the trees it may touch, and a way to look at them.
type Contract struct {
	Action modules.Action
	Config *modules.Config
	// Roots are the trees Snapshot compares; Ignore drops lines (the kept
	// previous copies an undo leaves behind on purpose, for instance).
	Roots  []string
	Ignore []string
	// Exec runs a command as root on the host (LocalHost.Exec, testbed's Host.Exec).
	Exec func(ctx context.Context, cmd string) (string, error)
	// Acts is for an action that acts on every apply by design (restore):
	// Plan after Apply need not be a no-op, and a second Apply is held only
	// to leave the trees as the first one did.
	Acts bool
}

// CheckContract holds one action to the contract written in modules.go:
//
//   - Plan never changes the target (the trees are the same after it);
//   - Record is called before anything changes (the trees are still as
//     before when Record runs), by every action that can undo itself;
//   - Apply changes the host, and Plan after Apply is a no-op (= or s);
//   - Apply again changes nothing;
//   - Undo with the recorded state restores the trees exactly.
func (r *Runner) CheckContract(c Contract) {
	t := r.T
	t.Helper()
	snap := func() string { return Snapshot(t, c.Exec, c.Roots, c.Ignore...) }
	before := snap()
	p := r.Plan(c.Action, c.Config)
	if p.Change == modules.NoOp || p.Change == modules.Skip {
		t.Fatalf("the case must change the host; plan says %s (%s)", p.Change, p.Reason)
	}
	if after := snap(); after != before {
		t.Fatalf("Plan changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	ctx, cancel := r.ctx()
	defer cancel()
	req := r.req(c.Config)
	var state json.RawMessage
	recorded := false
	req.Record = func(s json.RawMessage) error {
		t.Helper()
		if !recorded {
			if now := snap(); now != before {
				t.Errorf("Record was called after the action changed the target:\nbefore:\n%s\nat Record:\n%s", before, now)
			}
		}
		recorded = true
		state = append(json.RawMessage(nil), s...)
		return nil
	}
	out, err := c.Action.Apply(ctx, req)
	if err != nil {
		t.Fatalf("apply %s: %v\nlog:\n%s", c.Action.Kind(), err, r.Log.String())
	}
	if !out.Changed {
		t.Fatalf("apply changed nothing: %s", out.Message)
	}
	undoer, canUndo := c.Action.(modules.Undoer)
	if canUndo && !recorded {
		t.Errorf("%s can undo but did not call Record before changing the host", c.Action.Kind())
	}
	if state == nil {
		state = out.Undo
	}
	if p := r.Plan(c.Action, c.Config); !c.Acts && p.Change != modules.NoOp && p.Change != modules.Skip {
		t.Errorf("Plan after Apply = %s (%s), want a no-op", p.Change, p.Summary)
	}
	applied := snap()
	if out, _ := r.MustApply(c.Action, c.Config); out.Changed && !c.Acts {
		t.Errorf("a second Apply changed the host again: %s", out.Message)
	}
	if again := snap(); again != applied {
		t.Errorf("a second Apply changed the trees:\nafter the first:\n%s\nafter the second:\n%s", applied, again)
	}
	if !canUndo {
		return
	}
	if err := undoer.Undo(ctx, r.req(c.Config), state); err != nil {
		t.Fatalf("undo %s: %v\nlog:\n%s", c.Action.Kind(), err, r.Log.String())
	}
	if after := snap(); after != before {
		t.Errorf("Undo did not restore the trees:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// LocalRunner is a Runner on a LocalHost called "local", with its own state
// and configuration directories: for action suites that need real commands
// and files but no network.
func LocalRunner(t testing.TB, run string) (*Runner, *LocalHost) {
	h := NewLocalHost("local")
	env := &Env{ID: run, Dir: t.TempDir(), Targets: map[string]modules.Target{"local": h}}
	return &Runner{T: t, Env: env, Host: "local", Dir: t.TempDir()}, h
}
