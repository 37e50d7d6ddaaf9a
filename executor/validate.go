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
	// waived: steps with backup_required = false (a warning each).
	waived []waiver
}

type change struct {
	node     string
	resource string // "host:NAME" or "database:NAME"
	subject  hcl.Range
	waivable bool // backup_required = false may waive it (steps)
}

type waiver struct {
	node string
	at   hcl.Range
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

// modules runs, node by node, the module Validators of its blocks and
// records what it changes and what backups protect (graphNode.validate).
func (v *validator) modules() {
	addrs := make([]string, 0, len(v.cfg.Nodes))
	for a := range v.cfg.Nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		nodeFor(v.reg, v.cfg.Nodes[a]).validate(v)
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
