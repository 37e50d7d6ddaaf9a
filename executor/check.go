package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// checkNode is a check: its probes run until all pass, at most retries+1
// times. It only reads, so it is always safe to repeat and has no undo.
type checkNode struct {
	n   *lang.Node
	reg *modules.Registry
}

func (k *checkNode) validate(v *validator) {
	for _, b := range k.n.Check.Probes {
		if m, ok := v.reg.Probe(b.Kind); ok {
			if mc := v.decode(b); mc != nil {
				v.validateModule(m, mc, k.n.Addr)
			}
		}
	}
}

func (k *checkNode) hosts(*hcl.EvalContext) ([]string, hcl.Diagnostics) { return nil, nil }

func (k *checkNode) skippedOutputs() map[string]cty.Value {
	return map[string]cty.Value{"passed": cty.NullVal(cty.Bool)}
}

// plan describes each probe from its arguments: probes have no Plan.
func (k *checkNode) plan(_ context.Context, s *session, pn *PlanNode, ectx *hcl.EvalContext, _ map[string]map[string]cty.Value) {
	for i, blk := range k.n.Check.Probes {
		mc, ds := decode(s.cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
		var m modules.Module
		if p, ok := k.reg.Probe(blk.Kind); ok {
			m = p
		}
		a := &PlanAction{Kind: blk.Kind, Index: i, Change: string(modules.Read), Summary: describe(m, blk.Kind, mc, modules.Read).Summary}
		if ds.HasErrors() {
			a.Error = ds.Error()
		}
		pn.Actions = append(pn.Actions, a)
	}
	pn.Undo = "nothing to undo (reads only)"
}

func (k *checkNode) apply(ctx context.Context, r *run, _ []string) (*modules.Outcome, error) {
	return &modules.Outcome{Outputs: map[string]cty.Value{"passed": cty.True}}, r.runCheck(ctx, k.n)
}

func (k *checkNode) repeatUnsafe(*run, *NodeState) string         { return "" }
func (k *checkNode) hasUndo(*NodeState) bool                      { return false }
func (k *checkNode) undo(context.Context, *run, *NodeState) error { return nil }

// runCheck runs a check's probes until all pass, at most retries+1 times
// (also for observe, through Env.Check, and for escalation).
func (r *run) runCheck(ctx context.Context, n *lang.Node) error {
	c := n.Check
	attempts := c.Retries + 1
	var last error
	for a := 1; a <= attempts; a++ {
		last = r.checkOnce(ctx, n)
		if last == nil {
			return nil
		}
		if a < attempts {
			r.s.emit(Event{Type: EvLog, Node: n.Addr, Message: r.redact(fmt.Sprintf("attempt %d of %d failed: %s; next in %s", a, attempts, diagText(last), c.Interval))})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.Interval):
			}
		}
	}
	if attempts > 1 {
		return fmt.Errorf("%s failed %d times, last: %w", n.Addr, attempts, last)
	}
	return fmt.Errorf("%s failed: %w", n.Addr, last)
}

func (r *run) checkOnce(ctx context.Context, n *lang.Node) error {
	var errs []error
	lw := &logWriter{r: r, node: n.Addr}
	defer lw.flush()
	for i, blk := range n.Check.Probes {
		mod, ok := r.opts.Registry.Probe(blk.Kind)
		if !ok {
			return fmt.Errorf("no module for probe %q", blk.Kind)
		}
		mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
		if ds.HasErrors() {
			return diags.Err(ds)
		}
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		if n.Check.Timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, n.Check.Timeout)
		}
		err := protect(func() error {
			return mod.Check(pctx, &modules.Request{Config: mc, Secrets: secretsOf(r.cfg), Node: n.Addr, Index: i, Env: r.env(n.Addr, ""), Log: lw})
		})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s #%d: %w", blk.Kind, i+1, err))
		}
	}
	return errors.Join(errs...)
}
