package executor

import (
	"context"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// graphNode is what the executor does with one node of the graph, whatever
// its kind: one implementation per kind, one file each (step.go, check.go,
// gate.go, modnode.go). Validate, plan, apply, resume and rollback call
// these methods; only nodeFor looks at a node's kind.
type graphNode interface {
	// validate runs the Validators of the node's blocks and tells v what the
	// node changes and what it protects (the backup interlock).
	validate(v *validator)
	// plan fills pn, its when already judged true or unknown; a node whose
	// outputs are known at plan time puts them in outs.
	plan(ctx context.Context, s *session, pn *PlanNode, ectx *hcl.EvalContext, outs map[string]map[string]cty.Value)
	// hosts are the hosts the node acts on, journaled with node_started.
	hosts(ectx *hcl.EvalContext) ([]string, hcl.Diagnostics)
	// apply runs the node. The outcome (also on error: its Undo state) is
	// journaled by the caller; Changed and Outputs say what it did.
	apply(ctx context.Context, r *run, hosts []string) (*modules.Outcome, error)
	// skippedOutputs are the outputs of a node whose when is false.
	skippedOutputs() map[string]cty.Value
	// repeatUnsafe says why the node, in flight when upgrader died, may not
	// be repeated by resume on its own ("": it may).
	repeatUnsafe(r *run, ns *NodeState) string
	// hasUndo reports whether the node left something to undo.
	hasUndo(ns *NodeState) bool
	// undo undoes the node; the caller journals undo_started/undo_finished
	// of the node around it.
	undo(ctx context.Context, r *run, ns *NodeState) error
}

// nodeFor builds the graphNode of n: the one place that switches on kinds.
// Every kind that is not a step, check or gate is a module's (modnode.go).
func nodeFor(reg *modules.Registry, n *lang.Node) graphNode {
	switch n.Kind {
	case lang.KindStep:
		return &stepNode{n: n, reg: reg}
	case lang.KindCheck:
		return &checkNode{n: n, reg: reg}
	case lang.KindGate:
		return &gateNode{n: n}
	}
	mod, _ := reg.Node(n.Kind)
	return &moduleNode{n: n, reg: reg, mod: mod}
}
