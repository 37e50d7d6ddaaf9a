package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// stepNode is a step: its actions run top to bottom on each of its hosts,
// hosts in batches; undone by its rollback block or each action's Undoer.
type stepNode struct {
	n   *lang.Node
	reg *modules.Registry
}

func (k *stepNode) validate(v *validator) {
	n, st := k.n, k.n.Step
	for _, b := range append(append([]*lang.Block(nil), st.Actions...), st.Rollback...) {
		if m, ok := v.reg.Action(b.Kind); ok {
			if mc := v.decode(b); mc != nil {
				v.validateModule(m, mc, n.Addr)
			}
		}
	}
	if !st.BackupRequired {
		v.waived = append(v.waived, waiver{node: n.Addr, at: st.WaiverRange})
		return
	}
	if len(st.Actions) == 0 || st.HostNames == nil {
		return // hosts known only at apply: the apply-time interlock judges them
	}
	subject := n.DeclRange
	if st.Hosts != nil {
		subject = st.Hosts.Range()
	}
	for _, h := range st.HostNames {
		v.changes = append(v.changes, change{node: n.Addr, resource: "host:" + h, subject: subject, waivable: true})
	}
}

func (k *stepNode) hosts(ectx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	hosts, _, ds := stepHosts(k.n, ectx)
	return hosts, ds
}

func (k *stepNode) skippedOutputs() map[string]cty.Value {
	return map[string]cty.Value{"changed": cty.False}
}

func (k *stepNode) plan(ctx context.Context, s *session, pn *PlanNode, ectx *hcl.EvalContext, _ map[string]map[string]cty.Value) {
	n, cfg, reg := k.n, s.cfg, s.opts.Registry
	hosts, after, ds := stepHosts(n, ectx)
	if ds.HasErrors() {
		pn.Error = ds.Error()
		return
	}
	pn.Hosts, pn.HostsAfter, pn.BatchSize = hosts, after, n.Step.BatchSize
	if !n.Step.BackupRequired {
		pn.Waiver = true
		r := n.Step.WaiverRange
		pn.WaiverRange = fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
	}
	for _, blk := range n.Step.Rollback {
		mc, _ := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
		pn.Rollback = append(pn.Rollback, describeAction(reg, blk.Kind, mc).Summary)
	}
	if len(pn.Rollback) > 0 {
		pn.Undo = "the rollback block"
	} else {
		var parts []string
		for i, blk := range n.Step.Actions {
			parts = append(parts, fmt.Sprintf("#%d %s: %s", i+1, blk.Kind, undoText(reg, blk.Kind)))
		}
		pn.Undo = strings.Join(parts, "; ")
	}
	planHosts := hosts
	if len(planHosts) == 0 {
		planHosts = []string{""} // hosts known only at apply: describe the actions once
	}
	results := make([][]*PlanAction, len(planHosts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.opts.parallelism())
	for hi, h := range planHosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for i, blk := range n.Step.Actions {
				mc, ds := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
				d := describeAction(reg, blk.Kind, mc)
				a := &PlanAction{Kind: blk.Kind, Host: h, Index: i, Change: string(d.Change), Summary: d.Summary}
				if len(n.Step.Rollback) == 0 {
					a.Undo = undoText(reg, blk.Kind)
				}
				mod, ok := reg.Action(blk.Kind)
				switch {
				case ds.HasErrors():
					a.Error = ds.Error()
				case !ok:
					a.Error = fmt.Sprintf("no module for action %q", blk.Kind)
				case s.opts.Hosts != nil && h != "":
					mp, err := planSafely(func() (*modules.Plan, error) {
						return mod.Plan(ctx, &modules.Request{Config: mc, Secrets: secretsOf(s.cfg), Node: n.Addr, Host: h, Index: i,
							Env: &env{s: s, node: n.Addr, host: h, planOnly: true}, Log: &strings.Builder{}})
					})
					fillAction(a, mp, err, cfg)
				}
				results[hi] = append(results[hi], a)
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		pn.Actions = append(pn.Actions, r...)
	}
}

// apply checks the interlock for the step's hosts, then runs its actions on
// each host, hosts in batches of batch_size (0: all at once).
func (k *stepNode) apply(ctx context.Context, r *run, hosts []string) (*modules.Outcome, error) {
	n := k.n
	out := &modules.Outcome{Outputs: map[string]cty.Value{"changed": cty.False}}
	if n.Step.BackupRequired {
		if err := r.interlock(n, hosts, nil); err != nil {
			return out, err
		}
	}
	if len(hosts) == 0 {
		return out, fmt.Errorf("%s has no hosts", n.Addr)
	}
	batch := n.Step.BatchSize
	if batch <= 0 || batch > len(hosts) {
		batch = len(hosts)
	}
	var changed atomic.Bool
	var err error
	for i := 0; i < len(hosts) && err == nil; i += batch {
		end := min(i+batch, len(hosts))
		errs := make([]error, end-i)
		var wg sync.WaitGroup
		for j, h := range hosts[i:end] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if p := recover(); p != nil { // a module's panic fails this host, not the process
						errs[j] = modules.OnHost(h, fmt.Errorf("internal error (panic): %v", p))
					}
				}()
				ch, err := k.runActions(ctx, r, h)
				if ch {
					changed.Store(true)
				}
				errs[j] = err
			}()
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	out.Changed = changed.Load()
	out.Outputs["changed"] = cty.BoolVal(out.Changed)
	return out, err
}

// runActions runs the step's actions on one host. Actions a resumed run
// already finished are not repeated.
func (k *stepNode) runActions(ctx context.Context, r *run, host string) (bool, error) {
	n := k.n
	changed := false
	lw := &logWriter{r: r, node: n.Addr, host: host}
	defer lw.flush()
	for i, blk := range n.Step.Actions {
		r.mu.Lock()
		prev := r.st.Nodes[n.Addr].action(host, i)
		r.mu.Unlock()
		if prev != nil && prev.Finished {
			changed = changed || prev.Changed
			continue
		}
		mod, ok := k.reg.Action(blk.Kind)
		if !ok {
			return changed, fmt.Errorf("%s: no module for action %q", n.Addr, blk.Kind)
		}
		mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
		if ds.HasErrors() {
			return changed, diags.Err(ds)
		}
		idx := journal.Idx(i)
		if err := r.journal(journal.Event{Type: journal.ActionStarted, Node: n.Addr, Host: host, Index: idx}, evData{Kind: blk.Kind}); err != nil {
			return changed, err
		}
		req := &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Host: host, Index: i, Env: r.env(n.Addr, host), Log: lw,
			Record: func(state json.RawMessage) error {
				return r.journal(journal.Event{Type: journal.UndoState, Node: n.Addr, Host: host, Index: journal.Idx(i)}, evData{State: state})
			}}
		out, err := mod.Apply(ctx, req)
		if err != nil {
			return changed, onHost(host, fmt.Errorf("%s #%d (%s): %w", blk.Kind, i+1, rangeString(blk.DeclRange), err))
		}
		if out == nil {
			out = &modules.Outcome{}
		}
		changed = changed || out.Changed
		if err := r.journal(journal.Event{Type: journal.ActionFinished, Node: n.Addr, Host: host, Index: idx},
			evData{Kind: blk.Kind, Changed: out.Changed, Skipped: out.Skipped, Message: r.redact(out.Message), State: out.Undo}); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// repeatUnsafe: a step's finished actions are never repeated; each
// unfinished one must be Repeatable and say it is safe.
func (k *stepNode) repeatUnsafe(r *run, ns *NodeState) string {
	ectx := r.scope(k.n)
	for _, a := range ns.Actions {
		if a.Finished || a.Index >= len(k.n.Step.Actions) {
			continue
		}
		blk := k.n.Step.Actions[a.Index]
		mod, _ := k.reg.Action(blk.Kind)
		rp, ok := mod.(modules.Repeatable)
		if !ok {
			return fmt.Sprintf("its %s action #%d on host %q may not be safe to repeat", blk.Kind, a.Index+1, a.Host)
		}
		mc, _ := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
		if !rp.Safe(mc) {
			why := blk.Kind + " says so for these arguments"
			if ex, ok := mod.(modules.RepeatExplainer); ok {
				why = ex.Unsafe(mc)
			}
			return fmt.Sprintf("its %s action #%d on host %q is not safe to repeat (%s)", blk.Kind, a.Index+1, a.Host, why)
		}
	}
	return ""
}

func (k *stepNode) hasUndo(ns *NodeState) bool {
	for _, a := range ns.Actions {
		if a.needsUndo() {
			return true
		}
	}
	return false
}

// needsUndo: the action may have changed its host (it changed something, or
// it did not finish) and is not undone yet.
func (a *ActionState) needsUndo() bool {
	return !a.Undone && a.Skipped == "" && (a.Changed || !a.Finished || len(a.State) > 0)
}

// undo runs the step's rollback block on each host it changed, hosts newest
// first; without one, each action's own undo, newest first.
func (k *stepNode) undo(ctx context.Context, r *run, ns *NodeState) error {
	n := k.n
	r.mu.Lock()
	actions := append([]*ActionState(nil), ns.Actions...)
	r.mu.Unlock()
	var hosts []string
	seen := map[string]bool{}
	for i := len(actions) - 1; i >= 0; i-- {
		if h := actions[i].Host; !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	if len(n.Step.Rollback) > 0 {
		for _, h := range hosts {
			needed := false
			for _, a := range actions {
				if a.Host == h && a.needsUndo() {
					needed = true
				}
			}
			if !needed {
				continue // nothing changed on h (or it is undone already)
			}
			if err := r.journal(journal.Event{Type: journal.UndoStarted, Node: n.Addr, Host: h}, evData{Via: "rollback block"}); err != nil {
				return err
			}
			if err := r.runRollbackBlock(ctx, n, n.Step.Rollback, h); err != nil {
				return err
			}
			if err := r.journal(journal.Event{Type: journal.UndoFinished, Node: n.Addr, Host: h}, evData{Via: "rollback block"}); err != nil {
				return err
			}
		}
		return nil
	}
	for i := len(actions) - 1; i >= 0; i-- {
		a := actions[i]
		if a.Undone || a.Skipped != "" || a.Index >= len(n.Step.Actions) {
			continue
		}
		blk := n.Step.Actions[a.Index]
		mod, _ := k.reg.Action(blk.Kind)
		u, ok := mod.(modules.Undoer)
		if !ok {
			if a.Changed || !a.Finished {
				r.mu.Lock()
				r.notes = append(r.notes, fmt.Sprintf("%s: %s #%d on host %q changed the host and has no undo (give the step a rollback block)", n.Addr, blk.Kind, a.Index+1, a.Host))
				r.mu.Unlock()
			}
			continue
		}
		if len(a.State) == 0 && !a.Changed {
			continue // nothing recorded, nothing changed
		}
		idx := journal.Idx(a.Index)
		if err := r.journal(journal.Event{Type: journal.UndoStarted, Node: n.Addr, Host: a.Host, Index: idx}, evData{Via: "undo", Kind: blk.Kind}); err != nil {
			return err
		}
		lw := &logWriter{r: r, node: n.Addr, host: a.Host}
		err := r.retry(ctx, n.Addr, a.Host, func() error {
			mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
			if ds.HasErrors() {
				return diags.Err(ds)
			}
			err := u.Undo(ctx, &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Host: a.Host, Index: a.Index, Env: r.env(n.Addr, a.Host), Log: lw, Record: noRecord}, a.State)
			if err != nil {
				return onHost(a.Host, fmt.Errorf("undo of %s #%d (%s): %w", blk.Kind, a.Index+1, rangeString(blk.DeclRange), err))
			}
			return nil
		})
		lw.flush()
		if err != nil {
			return err
		}
		if err := r.journal(journal.Event{Type: journal.UndoFinished, Node: n.Addr, Host: a.Host, Index: idx}, evData{Via: "undo", Kind: blk.Kind}); err != nil {
			return err
		}
	}
	return nil
}
