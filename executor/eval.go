package executor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// This file is the executor's only contact with lang's evaluation API.

func isSensitive(v cty.Value) bool { return lang.IsSensitive(v) }

// evalScope is the scope for one evaluation: run info plus the outputs of
// every node that has produced some (name and kind added).
func evalScope(cfg *lang.Config, info lang.RunInfo, outs map[string]map[string]cty.Value) *hcl.EvalContext {
	objs := make(map[string]cty.Value, len(outs))
	for addr, o := range outs {
		n := cfg.Nodes[addr]
		if n == nil {
			continue
		}
		attrs := make(map[string]cty.Value, len(o)+2)
		for k, v := range o {
			attrs[k] = v
		}
		attrs["name"] = cty.StringVal(n.Name)
		attrs["kind"] = cty.StringVal(n.Kind)
		objs[addr] = cty.ObjectVal(attrs)
	}
	return cfg.EvalContext(info, objs)
}

// decode decodes a module body into a modules.Config.
func decode(cfg *lang.Config, body hcl.Body, spec hcldec.Spec, decl hcl.Range, ctx *hcl.EvalContext) (*modules.Config, hcl.Diagnostics) {
	val, ranges, ds := lang.DecodeBody(body, spec, ctx)
	// what functions computed from sensitive values is known before the
	// module runs, the parts of a command as well as the whole
	if lang.IsSensitive(val) {
		sec := secretsOf(cfg)
		sec.Add(lang.SensitiveStrings(val)...)
		sec.Add(lang.SensitiveParts(body, ctx)...)
	}
	return &modules.Config{Value: val, Ranges: ranges, DeclRange: decl, Dir: cfg.Dir, Functions: cfg.PureFunctions()}, ds
}

// evalWhen evaluates a node's when: known says whether it could be decided.
func evalWhen(n *lang.Node, ctx *hcl.EvalContext) (run, known bool, after []string, ds hcl.Diagnostics) {
	if n.When == nil {
		return true, true, nil, nil
	}
	v, ds := n.When.Value(ctx)
	if ds.HasErrors() {
		return false, false, nil, ds
	}
	if !v.IsWhollyKnown() {
		after := lang.AfterNodes(v)
		if len(after) == 0 {
			after = pendingRefs(n.When, ctx)
		}
		return false, false, after, nil
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		// an output of a skipped node is null: the branch it guards is not taken
		return false, true, nil, nil
	}
	if v.Type() != cty.Bool {
		return false, false, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid when",
			Detail:  fmt.Sprintf("when must be true or false, not %s.", v.Type().FriendlyName()),
			Subject: n.When.Range().Ptr(),
		}}
	}
	return v.True(), true, nil, nil
}

// pendingRefs lists the nodes an expression refers to whose referenced
// value is still unknown (operators may drop the marks that say so).
func pendingRefs(expr hcl.Expression, ctx *hcl.EvalContext) []string {
	seen := map[string]bool{}
	var out []string
	for _, tr := range expr.Variables() {
		if len(tr) < 2 {
			continue
		}
		attr, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		addr := tr.RootName() + "." + attr.Name
		if seen[addr] {
			continue
		}
		if v, diags := tr.TraverseAbs(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
			continue
		}
		seen[addr] = true
		out = append(out, addr)
	}
	sort.Strings(out)
	return out
}

// stepHosts evaluates a step's host/hosts into host names; after lists the
// nodes they wait for when not known yet (plan).
func stepHosts(n *lang.Node, ctx *hcl.EvalContext) (hosts []string, after []string, ds hcl.Diagnostics) {
	if n.Step == nil || n.Step.Hosts == nil {
		return nil, nil, nil
	}
	v, ds := n.Step.Hosts.Value(ctx)
	if ds.HasErrors() {
		return nil, nil, ds
	}
	names, known, err := lang.HostNames(v)
	if !known {
		return nil, lang.AfterNodes(v), nil
	}
	if err != nil {
		return nil, nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid hosts", Detail: err.Error(), Subject: n.Step.Hosts.Range().Ptr()}}
	}
	return names, nil, nil
}

// FormatValue prints a value for a human: "(sensitive)", "(known after
// NODE)", or the value itself (strings unquoted at top level).
func FormatValue(v cty.Value) string {
	if isSensitive(v) {
		return "(sensitive)"
	}
	if !v.IsWhollyKnown() {
		if after := lang.AfterNodes(v); len(after) > 0 {
			return "(known after " + strings.Join(after, ", ") + ")"
		}
		return "(known after apply)"
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return "null"
	}
	if v.Type() == cty.String && v.AsString() != "" {
		return v.AsString()
	}
	return formatLiteral(v)
}

func formatLiteral(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case ty == cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case ty == cty.Bool:
		if v.True() {
			return "true"
		}
		return "false"
	case ty.IsObjectType() || ty.IsMapType():
		// references print as they are written: host.web, database.prod, step.x
		if name := modules.GetString(v, "name"); name != "" {
			switch {
			case modules.GetString(v, "kind") != "":
				return modules.GetString(v, "kind") + "." + name
			case ty.IsObjectType() && ty.HasAttribute("address") && ty.HasAttribute("port"):
				return "host." + name
			case ty.IsObjectType() && ty.HasAttribute("driver"):
				return "database." + name
			}
		}
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			parts = append(parts, k.AsString()+" = "+formatLiteral(e))
		}
		sort.Strings(parts)
		return "{ " + strings.Join(parts, ", ") + " }"
	case v.CanIterateElements():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			parts = append(parts, formatLiteral(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return v.GoString()
}

// describe is a block's line for a plan that contacts no host (offline
// plans, probes, rollback blocks): the module's Describer or, without one,
// the kind and every argument; def is the change when the module does not
// say. m may be nil (a kind no module registered).
func describe(m modules.Module, kind string, mc *modules.Config, def modules.Change) modules.Description {
	var d modules.Description
	if ds, ok := m.(modules.Describer); ok && mc != nil {
		func() {
			defer func() {
				if recover() != nil { // a module's panic costs it its own description only
					d = modules.Description{}
				}
			}()
			d = ds.Describe(mc)
		}()
	}
	if d.Change == "" {
		d.Change = def
	}
	if d.Summary == "" {
		var v cty.Value
		if mc != nil {
			v = mc.Value
		}
		d.Summary = summarize(kind, v, d.Attrs)
	}
	return d
}

// describeAction describes an action block (offline: a command of unknown effect).
func describeAction(reg *modules.Registry, kind string, mc *modules.Config) modules.Description {
	var m modules.Module
	if a, ok := reg.Action(kind); ok {
		m = a
	}
	return describe(m, kind, mc, modules.Exec)
}

// summarize is "KIND attr = value, ..." for attrs (nil: every argument, by
// name), values printed as FormatValue does (sensitive, known after).
func summarize(kind string, v cty.Value, attrs []string) string {
	if attrs == nil && v != cty.NilVal && v.IsKnown() && !v.IsNull() {
		if inner, _ := v.Unmark(); inner.Type().IsObjectType() {
			for name := range inner.Type().AttributeTypes() {
				attrs = append(attrs, name)
			}
			sort.Strings(attrs)
		}
	}
	var parts []string
	for _, k := range attrs {
		a := getMarked(v, k)
		if a.IsKnown() && a.IsNull() {
			continue
		}
		s := FormatValue(a)
		if len(s) > 120 {
			s = s[:117] + "..."
		}
		parts = append(parts, k+" = "+s)
	}
	if len(parts) == 0 {
		return kind
	}
	return kind + " " + strings.Join(parts, ", ")
}

// getMarked returns obj.attr keeping marks (modules.Get drops them).
func getMarked(obj cty.Value, attr string) cty.Value {
	if obj == cty.NilVal || obj.IsNull() || !obj.IsKnown() {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	inner, marks := obj.Unmark()
	if !inner.IsKnown() || inner.IsNull() || !inner.Type().IsObjectType() || !inner.Type().HasAttribute(attr) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return inner.GetAttr(attr).WithMarks(marks)
}
