package executor

import (
	"context"
	"fmt"
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
// gate waits) or the operator's yes on the terminal.
func (k *gateNode) wait(ctx context.Context, r *run) (string, error) {
	n := k.n
	if a, _ := r.opts.store().Approval(ctx, r.id, n.Addr); a != nil {
		return a.By, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: a.By})
	}
	msg := k.message()
	r.s.emit(Event{Type: EvWaiting, Node: n.Addr, Message: fmt.Sprintf("%s\nTo approve: upgrader approve -state-dir %s %s %s", msg, r.opts.StateDir, r.id, n.Addr)})
	answers := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.opts.Prompt != nil {
		go func() {
			ok, err := r.opts.Prompt(pctx, fmt.Sprintf("%s: %s Approve?", n.Addr, msg))
			if err == nil && !ok {
				err = fmt.Errorf("%s: declined by the operator", n.Addr)
			}
			answers <- err
		}()
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
			me := journal.Me(r.id)
			by := me.User + "@" + me.Host + " (terminal)"
			return by, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: by})
		case <-tick.C:
			if a, _ := r.opts.store().Approval(ctx, r.id, n.Addr); a != nil {
				return a.By, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: a.By})
			}
		}
	}
}
