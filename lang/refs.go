package lang

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// suggest returns the candidate closest to given, "" when none is close.
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		d := levenshtein.Distance(given, c, nil)
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// traversalName returns the second step of a traversal (var.NAME ->
// NAME), its range, and whether it has one.
func traversalName(t hcl.Traversal) (string, hcl.Range, bool) {
	if len(t) < 2 {
		return "", hcl.Range{}, false
	}
	switch s := t[1].(type) {
	case hcl.TraverseAttr:
		return s.Name, s.SrcRange, true
	case hcl.TraverseIndex:
		if k, _ := s.Key.Unmark(); k.IsKnown() && !k.IsNull() && k.Type().FriendlyName() == "string" {
			return k.AsString(), s.SrcRange, true
		}
	}
	return "", hcl.Range{}, false
}

// undeclared reports a reference to something that does not exist.
func (l *loader) undeclared(t hcl.Traversal, what, name string, candidates []string) {
	detail := fmt.Sprintf("There is no %s named %q.", what, name)
	if s := suggest(name, candidates); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	} else if len(candidates) > 0 && len(candidates) <= 20 {
		detail += " Declared: " + strings.Join(candidates, ", ") + "."
	}
	l.errorf(t.SourceRange(), fmt.Sprintf("Reference to undeclared %s %q", what, name), "%s", detail)
}

// refs is what the references of a node's expressions come to.
type refs struct {
	deps map[string]hcl.Range // node address -> where it is referenced
	bad  []hcl.Range          // references already reported
}

func (r *refs) addDep(addr string, rng hcl.Range) {
	if r.deps == nil {
		r.deps = map[string]hcl.Range{}
	}
	if _, ok := r.deps[addr]; !ok {
		r.deps[addr] = rng
	}
}

// checkRefs checks the traversals of a node's expressions: undeclared
// names are reported; references to nodes become dependencies.
func (l *loader) checkRefs(ts []hcl.Traversal, r *refs) {
	for _, t := range ts {
		if !l.checkRef(t, r) {
			r.bad = append(r.bad, t.SourceRange())
		}
	}
}

func (l *loader) checkRef(t hcl.Traversal, r *refs) bool {
	root := t.RootName()
	name, _, has := traversalName(t)
	switch root {
	case "var":
		if has {
			if _, ok := l.cfg.Variables[name]; !ok {
				l.undeclared(t, "variable", name, l.varNames())
				return false
			}
		}
		return true
	case "local":
		if has {
			if _, ok := l.cfg.Locals[name]; !ok {
				l.undeclared(t, "local value", name, slices.Sorted(maps.Keys(l.cfg.Locals)))
				return false
			}
		}
		return true
	case "host":
		if has && l.cfg.HostSets[name] == nil {
			if _, ok := l.cfg.Hosts[name]; !ok {
				l.undeclared(t, "host", name, l.cfg.HostOrder)
				return false
			}
		}
		return true
	case "each":
		if !l.inForEach {
			l.errorf(t.SourceRange(), "Invalid reference", "each.key and each.value exist only in a block with for_each.")
			return false
		}
		return true
	case "database":
		if has {
			if _, ok := l.cfg.Databases[name]; !ok {
				l.undeclared(t, "database", name, slices.Sorted(maps.Keys(l.cfg.Databases)))
				return false
			}
		}
		return true
	case "metric_source":
		if has {
			if _, ok := l.cfg.MetricSources[name]; !ok {
				l.undeclared(t, "metric source", name, slices.Sorted(maps.Keys(l.cfg.MetricSources)))
				return false
			}
		}
		return true
	case "run":
		if has && name != "id" && name != "started_at" {
			l.errorf(t.SourceRange(), "Unsupported attribute", "run has the attributes id and started_at, not %q.", name)
			return false
		}
		return true
	case "phase":
		l.errorf(t.SourceRange(), "Invalid reference to a phase", "A phase can be referenced only in depends_on.")
		return false
	}
	if l.isNodeKind(root) {
		if l.inStatic {
			l.errorf(t.SourceRange(), "Invalid reference", "Connections, hosts and databases can not refer to graph nodes (%s): their values must be known before the run starts.", root)
			return false
		}
		if !has {
			l.errorf(t.SourceRange(), "Invalid reference", "A reference to a %s node must name it: %s.NAME.", root, root)
			return false
		}
		addr := root + "." + name
		if _, ok := l.pending[addr]; !ok {
			l.undeclaredNode(t, root, name)
			return false
		}
		r.addDep(addr, t.SourceRange())
		return true
	}
	known := append([]string{"var", "local", "host", "database", "metric_source", "run"}, l.nodeKinds()...)
	detail := fmt.Sprintf("There is nothing named %q here.", root)
	if s := suggest(root, known); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	detail += " References start with one of: " + strings.Join(known, ", ") + "."
	l.errorf(t.SourceRange(), "Unknown variable", "%s", detail)
	return false
}

// undeclaredNode reports a reference to a node that does not exist,
// suggesting a close name of the same kind or the same name of another kind.
func (l *loader) undeclaredNode(t hcl.Traversal, kind, name string) {
	var same []string
	var other []string
	for addr, p := range l.pending {
		if p.kind == kind {
			same = append(same, p.name)
		} else if p.name == name {
			other = append(other, addr)
		}
	}
	sort.Strings(same)
	sort.Strings(other)
	detail := fmt.Sprintf("There is no %s named %q.", kind, name)
	if s := suggest(name, same); s != "" {
		detail += fmt.Sprintf(" Did you mean %s.%s?", kind, s)
	} else if len(other) > 0 {
		detail += fmt.Sprintf(" Did you mean %s?", other[0])
	}
	l.errorf(t.SourceRange(), fmt.Sprintf("Reference to undeclared %s %q", kind, name), "%s", detail)
}

// dropContained removes the diagnostics that point inside a reference that
// was already reported, so one mistake gives one diagnostic.
func dropContained(diags hcl.Diagnostics, bad []hcl.Range) hcl.Diagnostics {
	if len(bad) == 0 {
		return diags
	}
	out := diags[:0:0]
	for _, d := range diags {
		if d.Subject != nil && within(*d.Subject, bad) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func within(r hcl.Range, bad []hcl.Range) bool {
	for _, b := range bad {
		if r.Filename == b.Filename && r.Start.Byte >= b.Start.Byte && r.End.Byte <= b.End.Byte {
			return true
		}
	}
	return false
}
