package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// moduleNode is a node kind a module implements (modules.Node: backup,
// schema_check, migrate, observe, ...). What the executor needs to know
// about it comes from the module's optional interfaces (Changes, Protects,
// Repeatable, Undoer, Describer); mod is nil for a kind not registered.
type moduleNode struct {
	n   *lang.Node
	reg *modules.Registry
	mod modules.Node
}

func (k *moduleNode) validate(v *validator) {
	n := k.n
	if k.mod == nil {
		return
	}
	mc := v.decode(&lang.Block{Kind: n.Kind, Body: n.Body, Spec: n.Spec, DeclRange: n.DeclRange, Loaded: n.Loaded})
	if mc == nil {
		return
	}
	v.validateModule(k.mod, mc, n.Addr)
	k.validateRollback(v)
	if p, ok := k.mod.(modules.Protects); ok {
		hosts, dbs := v.safeResources(n.Addr, func() ([]string, []string) { return p.Protects(mc) })
		for _, h := range hosts {
			v.protects["host:"+h] = append(v.protects["host:"+h], n.Addr)
		}
		for _, d := range dbs {
			v.protects["database:"+d] = append(v.protects["database:"+d], n.Addr)
		}
	}
	if c, ok := k.mod.(modules.Changes); ok {
		hosts, dbs := v.safeResources(n.Addr, func() ([]string, []string) { return c.Changes(mc) })
		for _, h := range hosts {
			v.changes = append(v.changes, change{node: n.Addr, resource: "host:" + h, subject: *mc.Range("host")})
		}
		for _, d := range dbs {
			v.changes = append(v.changes, change{node: n.Addr, resource: "database:" + d, subject: *mc.Range("database")})
		}
	}
}

// validateRollback checks the node's rollback block: it has no host, so
// only Hostless actions (restore) may stand in it.
func (k *moduleNode) validateRollback(v *validator) {
	n := k.n
	for _, b := range n.Rollback {
		m, ok := v.reg.Action(b.Kind)
		if h, isH := m.(modules.Hostless); !ok || !isH || !h.Hostless() {
			v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Action without a host",
				Detail:  fmt.Sprintf("A %s node runs on no host, so its rollback block can hold only restore actions (a restore acts where its backup was taken). Undo %s on hosts in a step's rollback block instead.", n.Kind, b.Kind),
				Subject: b.DeclRange.Ptr()})
			continue
		}
		if mc := v.decode(b); mc != nil {
			v.validateModule(m, mc, n.Addr)
		}
	}
}

func (k *moduleNode) hosts(*hcl.EvalContext) ([]string, hcl.Diagnostics) { return nil, nil }

// skippedOutputs: a skipped node's outputs are null.
func (k *moduleNode) skippedOutputs() map[string]cty.Value {
	outs := map[string]cty.Value{}
	if k.mod != nil {
		for name, t := range k.mod.Outputs() {
			outs[name] = cty.NullVal(t)
		}
	}
	return outs
}

func (k *moduleNode) plan(ctx context.Context, s *session, pn *PlanNode, ectx *hcl.EvalContext, outs map[string]map[string]cty.Value) {
	n, cfg := k.n, s.cfg
	if k.mod == nil {
		pn.Error = fmt.Sprintf("no module for node kind %q", n.Kind)
		return
	}
	mc, ds := decode(cfg, n.Body, n.Spec, n.DeclRange, ectx)
	d := describe(k.mod, n.Kind, mc, modules.Exec)
	a := &PlanAction{Kind: n.Kind, Index: -1, Change: string(d.Change), Summary: d.Summary}
	for _, blk := range n.Rollback {
		rc, _ := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
		pn.Rollback = append(pn.Rollback, describeAction(k.reg, blk.Kind, rc).Summary)
	}
	if _, ok := k.mod.(modules.Undoer); len(pn.Rollback) > 0 {
		pn.Undo = "the rollback block"
	} else if ok {
		pn.Undo = "its own undo"
	} else {
		pn.Undo = "nothing to undo"
	}
	if ds.HasErrors() {
		a.Error = ds.Error()
	} else if s.opts.Hosts != nil {
		lw := &strings.Builder{}
		mp, err := planSafely(func() (*modules.Plan, error) {
			return k.mod.Plan(ctx, &modules.Request{Config: mc, Secrets: secretsOf(s.cfg), Node: n.Addr, Index: -1, Env: &env{s: s, node: n.Addr, planOnly: true}, Log: lw})
		})
		fillAction(a, mp, err, cfg)
		if mp != nil && len(mp.Outputs) > 0 {
			outs[n.Addr] = mp.Outputs
		}
	}
	pn.Actions = append(pn.Actions, a)
}

// apply checks the interlock for what the node changes (Changes), then
// calls the module.
func (k *moduleNode) apply(ctx context.Context, r *run, _ []string) (*modules.Outcome, error) {
	n := k.n
	if k.mod == nil {
		return nil, fmt.Errorf("no module for node kind %q", n.Kind)
	}
	mc, ds := decode(r.cfg, n.Body, n.Spec, n.DeclRange, r.scope(n))
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	if ch, ok := k.mod.(modules.Changes); ok {
		hosts, dbs := ch.Changes(mc)
		if err := r.interlock(n, hosts, dbs); err != nil {
			return nil, err
		}
	}
	lw := &logWriter{r: r, node: n.Addr}
	defer lw.flush()
	req := &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Index: -1, Env: r.env(n.Addr, ""), Log: lw,
		Record: func(state json.RawMessage) error {
			return r.journal(journal.Event{Type: journal.UndoState, Node: n.Addr}, evData{State: state})
		}}
	out, err := k.mod.Apply(ctx, req)
	if out == nil {
		out = &modules.Outcome{}
	}
	return out, err
}

// repeatUnsafe asks the module (Repeatable); a kind that does not say is
// not repeated on its own.
func (k *moduleNode) repeatUnsafe(r *run, _ *NodeState) string {
	rp, ok := k.mod.(modules.Repeatable)
	if !ok {
		return fmt.Sprintf("a %s node is not known to be safe to repeat", k.n.Kind)
	}
	mc, _ := decode(r.cfg, k.n.Body, k.n.Spec, k.n.DeclRange, r.scope(k.n))
	if rp.Safe(mc) {
		return ""
	}
	return fmt.Sprintf("%s says it is not safe to repeat", k.n.Kind)
}

func (k *moduleNode) hasUndo(ns *NodeState) bool {
	if len(k.n.Rollback) > 0 {
		// it changed something, or it recorded undo state and did not finish
		return ns.Changed || (len(ns.Undo) > 0 && ns.State != StateDone)
	}
	_, ok := k.mod.(modules.Undoer)
	return ok && len(ns.Undo) > 0
}

// undo runs the node's rollback block or, without one, the module's Undoer
// with the state it recorded.
func (k *moduleNode) undo(ctx context.Context, r *run, ns *NodeState) error {
	n := k.n
	if len(n.Rollback) > 0 {
		return r.runRollbackBlock(ctx, n, n.Rollback, "")
	}
	u := k.mod.(modules.Undoer)
	return r.retry(ctx, n.Addr, "", func() error {
		mc, ds := decode(r.cfg, n.Body, n.Spec, n.DeclRange, r.scope(n))
		if ds.HasErrors() {
			return diags.Err(ds)
		}
		lw := &logWriter{r: r, node: n.Addr}
		defer lw.flush()
		return u.Undo(ctx, &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Index: -1, Env: r.env(n.Addr, ""), Log: lw, Record: noRecord}, ns.Undo)
	})
}
