package executor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// The backup interlock (SPEC 2.1), both halves: at validate time every
// node that changes a host or database needs a backup of it upstream; at
// apply time that backup must have completed in this run. Kinds tell what
// they change (graphNode.validate, modules.Changes) and protect
// (modules.Protects).

// interlock enforces SPEC 2.1: whatever changes a host or database has a
// backup of it on some dependency path before it.
func (v *validator) interlock() {
	if covered := v.covered(); covered != nil {
		v.reportUncovered(covered)
	}
	v.waivers()
}

// covered computes, in one pass in topological order, the set of changed
// resources protected by a backup upstream of each node: a bitset per
// node, the OR over its dependencies of their sets and what they protect.
// It returns nil on a cyclic graph (the cycle is the error to fix first).
func (v *validator) covered() map[string][]uint64 {
	order, err := v.g.TopoOrder()
	if err != nil {
		return nil
	}
	res := map[string]int{}
	for _, c := range v.changes {
		if _, ok := res[c.resource]; !ok {
			res[c.resource] = len(res)
		}
	}
	words := (len(res) + 63) / 64
	own := map[string][]uint64{} // what a backup node protects, as bits
	for r, backups := range v.protects {
		i, ok := res[r]
		if !ok {
			continue
		}
		for _, b := range backups {
			if own[b] == nil {
				own[b] = make([]uint64, words)
			}
			own[b][i/64] |= 1 << (i % 64)
		}
	}
	sets := make(map[string][]uint64, len(order))
	for _, a := range order {
		set := make([]uint64, words)
		for _, d := range v.cfg.Nodes[a].DependsOn {
			for w, x := range sets[d] {
				set[w] |= x
			}
			for w, x := range own[d] {
				set[w] |= x
			}
		}
		sets[a] = set
	}
	v.resIndex = res
	return sets
}

func (v *validator) reportUncovered(sets map[string][]uint64) {
	for _, c := range v.changes {
		i := v.resIndex[c.resource]
		if set := sets[c.node]; set != nil && set[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		kind, name, _ := strings.Cut(c.resource, ":")
		backups := v.protects[c.resource]
		var fix string
		if len(backups) > 0 {
			fix = fmt.Sprintf("%s backs up %s %q but does not run before %s: add depends_on = [%s] to %s.",
				strings.Join(backups, " and "), kind, name, c.node, backups[0], c.node)
		} else {
			ref := "host = host." + name
			if kind == "database" {
				ref = "database = database." + name
			}
			fix = fmt.Sprintf("Add a backup of %s %q (backup \"%s\" { %s ... }) and depends_on = [backup.%s] to %s.",
				kind, name, name, ref, name, c.node)
		}
		if c.waivable {
			fix += " Or set backup_required = false in the step to waive the interlock for it."
		}
		r := c.subject
		v.diags = append(v.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("No backup of %s %q before %s", kind, name, c.node),
			Detail: fmt.Sprintf("%s changes %s %q, and every operation that changes a host or database needs a backup of it on some dependency path before it (SPEC 2.1). %s",
				c.node, kind, name, fix),
			Subject: &r,
		})
	}
}

func (v *validator) waivers() {
	for _, w := range v.waived {
		r := w.at
		v.diags = append(v.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  fmt.Sprintf("Backup interlock waived for %s", w.node),
			Detail:   "backup_required = false: this step may change its hosts without a backup before it.",
			Subject:  &r,
		})
	}
}

// interlock refuses a node that changes hosts or databases no completed
// backup of this run protects (SPEC 2.1, at apply time; a step waived by
// backup_required = false does not ask).
func (r *run) interlock(n *lang.Node, hosts, dbs []string) error {
	covered := map[string]bool{}
	r.mu.Lock()
	var done []string
	for addr, ns := range r.st.Nodes {
		if ns.State == StateDone {
			done = append(done, addr)
		}
	}
	r.mu.Unlock()
	sort.Strings(done)
	for _, addr := range done {
		bn := r.cfg.Nodes[addr]
		if bn == nil || bn.Body == nil {
			continue
		}
		mod, ok := r.opts.Registry.Node(bn.Kind)
		if !ok {
			continue
		}
		p, ok := mod.(modules.Protects)
		if !ok {
			continue
		}
		mc, _ := decode(r.cfg, bn.Body, bn.Spec, bn.DeclRange, r.scope(bn))
		ph, pd := p.Protects(mc)
		for _, h := range ph {
			covered["host:"+h] = true
		}
		for _, d := range pd {
			covered["database:"+d] = true
		}
	}
	var missing []string
	for _, h := range hosts {
		if !covered["host:"+h] {
			missing = append(missing, "host "+h)
		}
	}
	for _, d := range dbs {
		if !covered["database:"+d] {
			missing = append(missing, "database "+d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s would change %s, but no backup of it completed earlier in this run: add a backup node that %s depends on, or set backup_required = false to waive it",
		n.Addr, strings.Join(missing, " and "), n.Addr)
}
