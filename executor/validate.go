package executor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/upgrader-dev/upgrader/executor/dag"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// Graph builds the dependency graph of a configuration: one node per
// graph node, an edge for each of its DependsOn.
func Graph(cfg *lang.Config) *dag.Graph {
	g := dag.New()
	addrs := make([]string, 0, len(cfg.Nodes))
	for a := range cfg.Nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		g.Add(a)
	}
	for _, a := range addrs {
		for _, d := range cfg.Nodes[a].DependsOn {
			if _, ok := cfg.Nodes[d]; ok {
				g.DependOn(a, d)
			}
		}
	}
	return g
}

// Validate checks what lang.Load can not: dependency cycles, the backup
// interlock of SPEC 2.1 and every module's own Validator. It needs no
// network. cfg must have loaded without errors.
func Validate(cfg *lang.Config, reg *modules.Registry) hcl.Diagnostics {
	if reg == nil {
		reg = modules.NewRegistry()
	}
	v := &validator{cfg: cfg, reg: reg, g: Graph(cfg),
		protects: map[string][]string{}}
	v.cycles()
	v.modules()
	v.interlock()
	lang.SortDiagnostics(v.diags)
	return v.diags
}

type validator struct {
	cfg   *lang.Config
	reg   *modules.Registry
	g     *dag.Graph
	diags hcl.Diagnostics

	// protects: "host:NAME" or "database:NAME" -> backup nodes covering it.
	protects map[string][]string
	// changes: what each node changes, with where to point a diagnostic.
	changes []change
	// resIndex: changed resource -> its bit in covered's sets.
	resIndex map[string]int
}

type change struct {
	node     string
	resource string // "host:NAME" or "database:NAME"
	subject  hcl.Range
}

func (v *validator) cycles() {
	for _, c := range v.g.Cycles() {
		on := map[string]bool{}
		for _, a := range c {
			on[a] = true
		}
		chain := strings.Join(append(append([]string(nil), c...), c[0]), " -> ")
		if len(c) == 1 {
			chain = c[0] + " -> " + c[0]
		}
		for i, a := range c {
			n := v.cfg.Nodes[a]
			// Point at the dependency that keeps a on the cycle: preferably
			// the next one in the listing.
			next := c[(i+1)%len(c)]
			if !contains(n.DependsOn, next) {
				next = ""
				for _, d := range n.DependsOn {
					if on[d] {
						next = d
						break
					}
				}
			}
			r := v.cfg.DependencyRange(n, next)
			v.diags = append(v.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Dependency cycle",
				Detail: fmt.Sprintf("%s depends on %s here, and these nodes depend on each other in a circle: %s. Remove one of these dependencies (a depends_on, a reference to another node's output, or a phase order).",
					a, next, chain),
				Subject: &r,
			})
		}
	}
}

func contains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

// modules decodes every module body at validate scope, runs the module's
// Validator and records what nodes change and what backups protect.
func (v *validator) modules() {
	addrs := make([]string, 0, len(v.cfg.Nodes))
	for a := range v.cfg.Nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		n := v.cfg.Nodes[a]
		switch {
		case n.Step != nil:
			for _, b := range append(append([]*lang.Block(nil), n.Step.Actions...), n.Step.Rollback...) {
				if m, ok := v.reg.Action(b.Kind); ok {
					if mc := v.decode(b); mc != nil {
						v.validateModule(m, mc, a)
					}
				}
			}
			if len(n.Step.Actions) == 0 || !n.Step.BackupRequired {
				continue
			}
			hosts := n.Step.HostNames
			if hosts == nil {
				continue // known only at apply: the apply-time interlock judges it
			}
			subject := n.DeclRange
			if n.Step.Hosts != nil {
				subject = n.Step.Hosts.Range()
			}
			for _, h := range hosts {
				v.changes = append(v.changes, change{node: a, resource: "host:" + h, subject: subject})
			}
		case n.Check != nil:
			for _, b := range n.Check.Probes {
				if m, ok := v.reg.Probe(b.Kind); ok {
					if mc := v.decode(b); mc != nil {
						v.validateModule(m, mc, a)
					}
				}
			}
		case n.Gate != nil:
		default:
			m, ok := v.reg.Node(n.Kind)
			if !ok {
				continue
			}
			mc := v.decode(&lang.Block{Kind: n.Kind, Body: n.Body, Spec: n.Spec, DeclRange: n.DeclRange, Loaded: n.Loaded})
			if mc == nil {
				continue
			}
			v.validateModule(m, mc, a)
			v.nodeRollback(n)
			if p, ok := m.(modules.Protects); ok {
				hosts, dbs := v.safeResources(a, func() ([]string, []string) { return p.Protects(mc) })
				for _, h := range hosts {
					v.protects["host:"+h] = append(v.protects["host:"+h], a)
				}
				for _, d := range dbs {
					v.protects["database:"+d] = append(v.protects["database:"+d], a)
				}
			}
			if c, ok := m.(modules.Changes); ok {
				hosts, dbs := v.safeResources(a, func() ([]string, []string) { return c.Changes(mc) })
				for _, h := range hosts {
					v.changes = append(v.changes, change{node: a, resource: "host:" + h, subject: *mc.Range("host")})
				}
				for _, d := range dbs {
					v.changes = append(v.changes, change{node: a, resource: "database:" + d, subject: *mc.Range("database")})
				}
			}
		}
	}
}

// hostless are the actions that know where they act without a host: the
// only ones a module node's rollback block (which has no host) may hold.
var hostless = map[string]bool{"restore": true}

// nodeRollback validates the actions of a module node's rollback block.
func (v *validator) nodeRollback(n *lang.Node) {
	for _, b := range n.Rollback {
		if !hostless[b.Kind] {
			v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Action without a host",
				Detail:  fmt.Sprintf("A %s node runs on no host, so its rollback block can hold only restore actions (a restore acts where its backup was taken). Undo %s on hosts in a step's rollback block instead.", n.Kind, b.Kind),
				Subject: b.DeclRange.Ptr()})
			continue
		}
		if m, ok := v.reg.Action(b.Kind); ok {
			if mc := v.decode(b); mc != nil {
				v.validateModule(m, mc, n.Addr)
			}
		}
	}
}

// decode returns a block's body as decoded by lang.Load in the validate
// scope; nil when that failed (lang.Load reported why).
func (v *validator) decode(b *lang.Block) *modules.Config {
	if b.Loaded == nil {
		return nil
	}
	return &modules.Config{Value: b.Loaded.Value, Ranges: lang.BodyRanges(b.Body, b.Spec), DeclRange: b.DeclRange, Dir: v.cfg.Dir, Functions: v.cfg.PureFunctions()}
}

// validateModule runs a module's Validator; a panic in a module becomes a
// diagnostic rather than a crash.
func (v *validator) validateModule(m modules.Module, mc *modules.Config, node string) {
	val, ok := m.(modules.Validator)
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			r := mc.DeclRange
			v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("Internal error in the %s module", m.Kind()),
				Detail:  fmt.Sprintf("Validating %s panicked: %v. Please report this.", node, p), Subject: &r})
		}
	}()
	v.diags = append(v.diags, val.Validate(mc)...)
}

func (v *validator) safeResources(node string, f func() ([]string, []string)) (hosts, dbs []string) {
	defer func() {
		if p := recover(); p != nil {
			v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Internal error in a module", Detail: fmt.Sprintf("%s: %v. Please report this.", node, p)})
		}
	}()
	return f()
}

// interlock enforces SPEC 2.1: whatever changes a host or database has a
// backup of it on some dependency path before it.
func (v *validator) interlock() {
	nodes := v.g.Nodes()
	if covered := v.covered(); covered != nil {
		v.reportUncovered(covered)
	}
	v.waivers(nodes)
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
		if n := v.cfg.Nodes[c.node]; n.Step != nil {
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

func (v *validator) waivers(nodes []string) {
	for _, a := range nodes {
		n := v.cfg.Nodes[a]
		if n.Step != nil && !n.Step.BackupRequired {
			r := n.Step.WaiverRange
			v.diags = append(v.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  fmt.Sprintf("Backup interlock waived for %s", a),
				Detail:   "backup_required = false: this step may change its hosts without a backup before it.",
				Subject:  &r,
			})
		}
	}
}
