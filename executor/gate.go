package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// gateNode is a gate: it waits for `upgrader approve RUN GATE` or a yes on
// the terminal. Waiting changes nothing: safe to repeat, nothing to undo.
type gateNode struct{ n *lang.Node }

func (k *gateNode) validate(*validator)                                {}
func (k *gateNode) hosts(*hcl.EvalContext) ([]string, hcl.Diagnostics) { return nil, nil }
func (k *gateNode) repeatUnsafe(*run, *NodeState) string               { return "" }
func (k *gateNode) hasUndo(*NodeState) bool                            { return false }
func (k *gateNode) undo(context.Context, *run, *NodeState) error       { return nil }

func (k *gateNode) skippedOutputs() map[string]cty.Value {
	return map[string]cty.Value{"approved_by": cty.NullVal(cty.String)}
}

func (k *gateNode) plan(_ context.Context, _ *session, pn *PlanNode, _ *hcl.EvalContext, _ map[string]map[string]cty.Value) {
	pn.Message = k.message()
	pn.Undo = "nothing to undo (waits for approval)"
}

func (k *gateNode) message() string {
	if k.n.Gate == nil {
		return ""
	}
	return k.n.Gate.Message
}

func (k *gateNode) apply(ctx context.Context, r *run, _ []string) (*modules.Outcome, error) {
	by, err := k.wait(ctx, r)
	return &modules.Outcome{Outputs: map[string]cty.Value{"approved_by": cty.StringVal(by)}}, err
}

// wait returns who approved: an approval file (written before or while the
// gate waits, by one of its approvers), the operator's yes on the terminal,
// or the gate's timeout with on_timeout = "approve". A rejection (upgrader
// reject, or the timeout with on_timeout = "reject") fails the gate.
func (k *gateNode) wait(ctx context.Context, r *run) (string, error) {
	n := k.n
	g := n.Gate
	if g == nil {
		g = &lang.Gate{}
	}
	ignored := map[string]bool{}
	// decided looks for a decision file; done is false while there is none
	// (or only one by someone not among the approvers).
	decided := func() (by string, done bool, err error) {
		a, _ := r.opts.store().Approval(ctx, r.id, n.Addr)
		if a == nil {
			return "", false, nil
		}
		who := a.By
		if a.As != "" {
			who = a.As + " (" + a.By + ")"
		}
		if !g.MayDecide(a.Name()) {
			if !ignored[who] {
				ignored[who] = true
				r.s.emit(Event{Type: EvLog, Node: n.Addr, Message: fmt.Sprintf("ignoring the decision of %s: %s may be decided only by %s", who, n.Addr, strings.Join(g.Approvers, ", "))})
			}
			return "", false, nil
		}
		return who, true, k.decide(r, who, a.Rejected(), a.Reason)
	}
	if by, ok, err := decided(); ok {
		return by, err
	}
	msg := k.message()
	wait := fmt.Sprintf("%s\nTo approve: upgrader approve -state-dir %s %s %s\nTo reject:  upgrader reject -state-dir %s %s %s -reason \"...\"",
		msg, r.opts.StateDir, r.id, n.Addr, r.opts.StateDir, r.id, n.Addr)
	if len(g.Approvers) > 0 {
		wait += "\nApprovers: " + strings.Join(g.Approvers, ", ")
	}
	if g.Timeout > 0 {
		wait += fmt.Sprintf("\nWithout a decision by %s the gate is %sd (on_timeout).", time.Now().Add(g.Timeout).UTC().Format(time.RFC3339), g.OnTimeout)
	}
	r.s.emit(Event{Type: EvWaiting, Node: n.Addr, Message: wait})
	answers := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	me := journal.Me(r.id)
	if r.opts.Prompt != nil && g.MayDecide(me.User) {
		go func() {
			ok, err := r.opts.Prompt(pctx, fmt.Sprintf("%s: %s Approve?", n.Addr, msg))
			if err == nil && !ok {
				err = fmt.Errorf("%s: declined by the operator", n.Addr)
			}
			answers <- err
		}()
	}
	var timeout <-chan time.Time
	if g.Timeout > 0 {
		t := time.NewTimer(g.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	tick := time.NewTicker(r.opts.approvalPoll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-answers:
			if err != nil {
				return "", err
			}
			by := me.User + "@" + me.Host + " (terminal)"
			return by, k.decide(r, by, false, "")
		case <-timeout:
			by := fmt.Sprintf("timeout (no decision within %s; on_timeout = %q)", g.Timeout, g.OnTimeout)
			return by, k.decide(r, by, g.OnTimeout != "approve", "no decision within "+g.Timeout.String())
		case <-tick.C:
			if by, ok, err := decided(); ok {
				return by, err
			}
		}
	}
}

// decide journals the decision; a rejection is the gate's error.
func (k *gateNode) decide(r *run, by string, rejected bool, reason string) error {
	if !rejected {
		return r.journal(journal.Event{Type: journal.Approved, Node: k.n.Addr}, evData{By: by, Message: "by " + by})
	}
	msg := "by " + by
	if reason != "" {
		msg += ": " + reason
	}
	if err := r.journal(journal.Event{Type: journal.Rejected, Node: k.n.Addr}, evData{By: by, Message: msg}); err != nil {
		return err
	}
	return fmt.Errorf("%s: rejected %s", k.n.Addr, msg)
}
