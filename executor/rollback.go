package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// recoverAndFinish handles a failed run (SPEC 2.2): undo the failing node's
// phase newest first (or the whole run for a node outside any phase), then
// evaluate the phase's escalate block.
func (r *run) recoverAndFinish(ctx context.Context) *Summary {
	if ctx.Err() != nil {
		return r.finish(OutcomeInterrupted, ctx.Err())
	}
	failing := r.cfg.Nodes[r.failNode]
	phase := ""
	if failing != nil {
		phase = failing.Phase
	}
	if phase == "" {
		r.s.emit(Event{Type: EvRollbackStarted, Node: r.failNode, Message: "rolling back the whole run, newest first"})
		if o := r.undoAll(ctx, func(*NodeState) bool { return true }); o != "" {
			return r.finish(o, r.failErr)
		}
		return r.finish(OutcomeRolledBack, r.failErr)
	}
	ph := r.cfg.Phases[phase]
	if ph != nil && ph.OnFailure == "stop" {
		r.s.emit(Event{Type: EvLog, Node: r.failNode, Message: fmt.Sprintf("phase %s has on_failure = \"stop\": nothing is undone", phase)})
		return r.finish(OutcomeFailed, r.failErr)
	}
	r.s.emit(Event{Type: EvRollbackStarted, Node: r.failNode, Phase: phase, Message: fmt.Sprintf("rolling back phase %s, newest first", phase)})
	if o := r.undoAll(ctx, func(ns *NodeState) bool { return r.phaseOf(ns) == phase }); o != "" {
		return r.finish(o, r.failErr)
	}
	if ph == nil || ph.Escalate == nil {
		return r.finish(OutcomeRolledBack, r.failErr)
	}
	esc := ph.Escalate
	var failingChecks []string
	for _, c := range esc.Checks {
		n := r.cfg.Nodes[c]
		if n == nil || n.Check == nil {
			continue
		}
		if err := r.runCheck(ctx, n); err != nil {
			failingChecks = append(failingChecks, c)
			r.s.emit(Event{Type: EvLog, Node: c, Message: r.redact("escalation check failed: " + diagText(err))})
		}
	}
	rb := ""
	if len(failingChecks) > 0 && esc.Rollback == "all" {
		rb = "all"
	}
	_ = r.journal(journal.Event{Type: journal.Escalation}, evData{Phase: phase, Checks: esc.Checks, Failing: failingChecks, Rollback: rb})
	if rb == "all" {
		r.s.emit(Event{Type: EvRollbackStarted, Phase: phase, Message: "escalation: rolling back every completed phase, newest first"})
		if o := r.undoAll(ctx, func(*NodeState) bool { return true }); o != "" {
			return r.finish(o, r.failErr)
		}
	}
	return r.finish(OutcomeRolledBack, r.failErr)
}

func (r *run) phaseOf(ns *NodeState) string {
	if n := r.cfg.Nodes[ns.Addr]; n != nil {
		return n.Phase
	}
	return ns.Phase
}

// undoAll undoes, newest first, every node in scope that changed something
// and is not undone yet. It stops at the first undo that keeps failing
// (older undos may rely on newer ones): OutcomeRollbackIncomplete; or when
// ctx ends: OutcomeInterrupted (resume finishes the rollback). "" when all is undone.
func (r *run) undoAll(ctx context.Context, scope func(*NodeState) bool) string {
	r.mu.Lock()
	order := append([]string(nil), r.st.Order...)
	r.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		r.mu.Lock()
		ns := r.st.Nodes[order[i]]
		state := ns.State
		r.mu.Unlock()
		if !scope(ns) {
			continue
		}
		switch state {
		case StateDone, StateFailed, StateRunning, StateUndoFailed:
		default:
			continue
		}
		if ctx.Err() != nil {
			return OutcomeInterrupted
		}
		if err := r.undoNode(ctx, ns); err != nil {
			if ctx.Err() != nil {
				return OutcomeInterrupted
			}
			r.mu.Lock()
			r.st.Left = r.leftFor(scope)
			r.mu.Unlock()
			return OutcomeRollbackIncomplete
		}
	}
	return ""
}

// leftFor lists what is still to be undone in scope, newest first (r.mu held).
func (r *run) leftFor(scope func(*NodeState) bool) []string {
	var left []string
	for i := len(r.st.Order) - 1; i >= 0; i-- {
		ns := r.st.Nodes[r.st.Order[i]]
		if !scope(ns) || !(ns.State == StateDone || ns.State == StateFailed || ns.State == StateUndoFailed) {
			continue
		}
		if !r.hasUndo(ns) {
			continue
		}
		s := ns.Addr
		if ns.State == StateUndoFailed {
			s += " (undo failed: " + ns.Error + ")"
		}
		var acts []string
		for j := len(ns.Actions) - 1; j >= 0; j-- {
			a := ns.Actions[j]
			if !a.Undone && (a.Changed || len(a.State) > 0 || !a.Finished) {
				acts = append(acts, fmt.Sprintf("%s #%d on %s", a.Kind, a.Index+1, a.Host))
			}
		}
		if len(acts) > 0 {
			s += ": " + strings.Join(acts, ", ")
		}
		left = append(left, s)
	}
	return left
}

// hasUndo reports whether a node has something to undo.
func (r *run) hasUndo(ns *NodeState) bool {
	gn := r.node(ns.Addr)
	return gn != nil && gn.hasUndo(ns)
}

// undoNode undoes one node through its kind (a step: its rollback block or
// each action's undo; a module node: its rollback block or its Undoer).
func (r *run) undoNode(ctx context.Context, ns *NodeState) error {
	if !r.hasUndo(ns) {
		return nil
	}
	n := r.cfg.Nodes[ns.Addr]
	if err := r.journal(journal.Event{Type: journal.UndoStarted, Node: n.Addr}, evData{Kind: n.Kind}); err != nil {
		return err
	}
	err := r.node(ns.Addr).undo(ctx, r, ns)
	if err != nil {
		if ctx.Err() == nil { // interrupted is not failed: resume tries again
			_ = r.journal(journal.Event{Type: journal.UndoFailed, Node: n.Addr}, evData{Error: r.redact(diagText(err)), Attempts: r.opts.undoAttempts()})
		}
		return err
	}
	return r.journal(journal.Event{Type: journal.UndoFinished, Node: n.Addr}, evData{})
}

func noRecord(json.RawMessage) error { return nil }

// runRollbackBlock applies a rollback block's actions top to bottom on host
// ("" for a module node: its actions, restore, know where they act), each
// retried; it stops at the first that still fails.
func (r *run) runRollbackBlock(ctx context.Context, n *lang.Node, blocks []*lang.Block, h string) error {
	lw := &logWriter{r: r, node: n.Addr, host: h}
	defer lw.flush()
	for i, blk := range blocks {
		mod, ok := r.opts.Registry.Action(blk.Kind)
		if !ok {
			return fmt.Errorf("no module for action %q", blk.Kind)
		}
		err := r.retry(ctx, n.Addr, h, func() error {
			mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
			if ds.HasErrors() {
				return diags.Err(ds)
			}
			_, err := mod.Apply(ctx, &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Host: h, Index: i, Env: r.env(n.Addr, h), Log: lw, Record: noRecord})
			if err != nil {
				return onHost(h, fmt.Errorf("rollback %s #%d (%s): %w", blk.Kind, i+1, rangeString(blk.DeclRange), err))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// retry runs an undo up to UndoAttempts times with doubling waits.
func (r *run) retry(ctx context.Context, node, host string, f func() error) error {
	wait := r.opts.undoBackoff()
	var err error
	for a := 1; a <= r.opts.undoAttempts(); a++ {
		if err = protect(f); err == nil {
			return nil
		}
		if a == r.opts.undoAttempts() {
			break
		}
		r.s.emit(Event{Type: EvLog, Node: node, Host: host, Message: r.redact(fmt.Sprintf("undo attempt %d failed: %s; retrying in %s", a, diagText(err), wait))})
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
	return err
}
