package lang

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// scope is what EvalContext needs, built once by Load.
type scope struct {
	static    map[string]cty.Value // var, local, host, database
	funcs     map[string]function.Function
	pureOnce  sync.Once
	pure      map[string]function.Function // PureFunctions
	kindNames map[string][]string          // node kind -> names of the referenced nodes, sorted
	kindObjs  map[string]cty.Value         // node kind -> object of node objects (outputs unknown)
}

// EvalContext returns the scope for evaluating expressions of this
// configuration: var, local, host, database, run, every node kind and the
// functions. A node missing from outputs is an object with name and kind
// known and its declared outputs unknown, marked AfterMark(addr). outputs
// maps a node address to an object of its outputs. Only nodes that some
// expression of the configuration references are in the scope (node
// references are static, so no expression can reach the others).
//
// Impure functions (timestamp) return real values only when the
// configuration was loaded with Options.Apply; otherwise (validate, plan)
// they return unknowns marked AfterMark("apply"). So does run.id / run.started_at
// when run is the zero RunInfo.
//
// EvalContext is safe for concurrent use; the returned context is fresh.
func (c *Config) EvalContext(run RunInfo, outputs map[string]cty.Value) *hcl.EvalContext {
	s := c.scope
	if s == nil {
		s = &scope{}
	}
	vars := make(map[string]cty.Value, len(s.static)+len(s.kindObjs)+1)
	for k, v := range s.static {
		vars[k] = v
	}
	for k, v := range s.kindObjs {
		vars[k] = v
	}
	vars["run"] = runValue(run)
	// Rebuild only the kinds that have outputs.
	touched := map[string]bool{}
	for addr := range outputs {
		if _, ok := s.kindNames[kindOf(addr)]; ok {
			touched[kindOf(addr)] = true
		}
	}
	for kind := range touched {
		names := s.kindNames[kind]
		attrs := make(map[string]cty.Value, len(names))
		def := s.kindObjs[kind]
		for _, n := range names {
			obj := def.GetAttr(n)
			if out, ok := outputs[kind+"."+n]; ok {
				obj = mergeOutputs(obj, out)
			}
			attrs[n] = obj
		}
		vars[kind] = cty.ObjectVal(attrs)
	}
	return &hcl.EvalContext{Variables: vars, Functions: s.funcs}
}

func kindOf(addr string) string {
	for i := 0; i < len(addr); i++ {
		if addr[i] == '.' {
			return addr[:i]
		}
	}
	return addr
}

func runValue(run RunInfo) cty.Value {
	id := cty.UnknownVal(cty.String).Mark(AfterMark("apply"))
	if run.ID != "" {
		id = cty.StringVal(run.ID)
	}
	started := cty.UnknownVal(cty.String).Mark(AfterMark("apply"))
	if !run.StartedAt.IsZero() {
		started = cty.StringVal(run.StartedAt.UTC().Format(time.RFC3339))
	}
	return cty.ObjectVal(map[string]cty.Value{"id": id, "started_at": started})
}

// mergeOutputs overlays a node's outputs on its default object (name, kind,
// declared outputs unknown). Outputs a node did not give stay unknown.
func mergeOutputs(def, out cty.Value) cty.Value {
	out, marks := out.Unmark() // a marked object's marks go onto each output
	if out.IsNull() || !out.IsKnown() {
		return def
	}
	ty := out.Type()
	if !ty.IsObjectType() && !ty.IsMapType() {
		return def
	}
	attrs := def.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	for it := out.ElementIterator(); it.Next(); {
		k, v := it.Element()
		name := k.AsString()
		if name == "name" || name == "kind" {
			continue
		}
		attrs[name] = v.WithMarks(marks)
	}
	return cty.ObjectVal(attrs)
}

// nodeObject is the value of a node that has not run: name and kind known,
// every declared output unknown and marked AfterMark(addr).
func nodeObject(kind, name string, outputs map[string]cty.Type) cty.Value {
	addr := kind + "." + name
	attrs := map[string]cty.Value{
		"name": cty.StringVal(name),
		"kind": cty.StringVal(kind),
	}
	for k, t := range outputs {
		if k == "name" || k == "kind" {
			continue
		}
		attrs[k] = cty.UnknownVal(t).Mark(AfterMark(addr))
	}
	return cty.ObjectVal(attrs)
}

// builtinOutputs are the outputs of the node kinds lang decodes itself.
var builtinOutputs = map[string]map[string]cty.Type{
	KindStep:  {"changed": cty.Bool},
	KindCheck: {"passed": cty.Bool},
	KindGate:  {"approved_by": cty.String},
}

// DecodeBody decodes a module body with its spec in ctx. Ranges maps each
// attribute present in the body to its expression's range and each nested
// block type to its first block's DefRange (see modules.Config). A nil spec
// accepts only an empty body.
func DecodeBody(body hcl.Body, spec hcldec.Spec, ctx *hcl.EvalContext) (cty.Value, map[string]hcl.Range, hcl.Diagnostics) {
	ranges := map[string]hcl.Range{}
	if body == nil {
		return cty.EmptyObjectVal, ranges, nil
	}
	if spec == nil {
		_, diags := body.Content(&hcl.BodySchema{})
		return cty.EmptyObjectVal, ranges, diags
	}
	val, diags := hcldec.Decode(body, spec, ctx)
	return val, BodyRanges(body, spec), diags
}

// BodyRanges maps each attribute present in body to its expression's range
// and each nested block type to its first block's DefRange. Nested blocks
// add BLOCK.N (the block's DefRange) and BLOCK.N.ATTR (N: the block's
// position among the blocks of that type, from 0), at any depth, so a
// mistake in the second `log` block is shown there.
func BodyRanges(body hcl.Body, spec hcldec.Spec) map[string]hcl.Range {
	ranges := map[string]hcl.Range{}
	addRanges(ranges, "", body, spec)
	return ranges
}

func addRanges(ranges map[string]hcl.Range, prefix string, body hcl.Body, spec hcldec.Spec) {
	if sb, ok := body.(*hclsyntax.Body); ok {
		// The cheap way for native syntax: no schema to build.
		for name, a := range sb.Attributes {
			ranges[prefix+name] = a.Expr.Range()
		}
		var seen map[string]int
		for _, b := range sb.Blocks {
			if seen == nil {
				seen = map[string]int{}
			}
			n := seen[b.Type]
			seen[b.Type]++
			if n == 0 {
				ranges[prefix+b.Type] = b.DefRange()
			}
			key := fmt.Sprintf("%s%s.%d", prefix, b.Type, n)
			ranges[key] = b.DefRange()
			addRanges(ranges, key+".", b.Body, nil)
		}
		return
	}
	if spec == nil {
		return
	}
	content, _, _ := body.PartialContent(hcldec.ImpliedSchema(spec))
	if content == nil {
		return
	}
	for name, a := range content.Attributes {
		ranges[prefix+name] = a.Expr.Range()
	}
	seen := map[string]int{}
	for _, b := range content.Blocks {
		n := seen[b.Type]
		seen[b.Type]++
		if n == 0 {
			ranges[prefix+b.Type] = b.DefRange
		}
		key := fmt.Sprintf("%s%s.%d", prefix, b.Type, n)
		ranges[key] = b.DefRange
		if b.Body != nil {
			addRanges(ranges, key+".", b.Body, nestedSpec(spec, b.Type))
		}
	}
}

// nestedSpec finds the spec of the body of blocks of type typeName in spec
// (nil when spec declares none): bodies in other syntaxes need a schema.
func nestedSpec(spec hcldec.Spec, typeName string) hcldec.Spec {
	switch s := spec.(type) {
	case *hcldec.ObjectSpec:
		return nestedSpec(*s, typeName)
	case *hcldec.TupleSpec:
		return nestedSpec(*s, typeName)
	case hcldec.ObjectSpec:
		for _, c := range s {
			if n := nestedSpec(c, typeName); n != nil {
				return n
			}
		}
	case hcldec.TupleSpec:
		for _, c := range s {
			if n := nestedSpec(c, typeName); n != nil {
				return n
			}
		}
	case *hcldec.BlockSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockListSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockSetSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockTupleSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockMapSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockObjectSpec:
		if s.TypeName == typeName {
			return s.Nested
		}
	case *hcldec.BlockAttrsSpec, *hcldec.AttrSpec, *hcldec.LiteralSpec:
	case *hcldec.DefaultSpec:
		if n := nestedSpec(s.Primary, typeName); n != nil {
			return n
		}
		return nestedSpec(s.Default, typeName)
	case *hcldec.ValidateSpec:
		return nestedSpec(s.Wrapped, typeName)
	case *hcldec.TransformExprSpec:
		return nestedSpec(s.Wrapped, typeName)
	case *hcldec.TransformFuncSpec:
		return nestedSpec(s.Wrapped, typeName)
	}
	return nil
}

// HostNames returns the names of the hosts in v: one host object (host.x)
// or a list, set or tuple of them. known is false when v is not known yet;
// err says what is wrong when v holds something that is not a host.
func HostNames(v cty.Value) (names []string, known bool, err error) {
	// Shallow unmarking only: a deep walk of every host object (labels
	// included) is the cost of this function on big configurations.
	v, _ = v.Unmark()
	if !v.IsKnown() {
		return nil, false, nil
	}
	if v.IsNull() {
		return nil, true, fmt.Errorf("hosts is null")
	}
	if isHostObject(v) {
		n, _ := v.GetAttr("name").Unmark()
		if !n.IsKnown() {
			return nil, false, nil
		}
		return []string{n.AsString()}, true, nil
	}
	ty := v.Type()
	if ty.IsObjectType() && isHostSet(v) {
		// a host set (host.NAME of a host with for_each): all its hosts, in key order
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			n, _ := e.GetAttr("name").Unmark()
			names = append(names, n.AsString())
		}
		return names, true, nil
	}
	if !(ty.IsListType() || ty.IsSetType() || ty.IsTupleType()) {
		return nil, true, fmt.Errorf("expected a host (host.NAME) or a list of hosts, got %s", ty.FriendlyName())
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		e, _ = e.Unmark()
		if !e.IsKnown() {
			return nil, false, nil
		}
		if e.IsNull() || !isHostObject(e) {
			return nil, true, fmt.Errorf("every element must be a host (host.NAME)")
		}
		n, _ := e.GetAttr("name").Unmark()
		if !n.IsKnown() {
			return nil, false, nil
		}
		names = append(names, n.AsString())
	}
	return names, true, nil
}

// isHostSet: an object whose every attribute is a known host object.
func isHostSet(v cty.Value) bool {
	if !v.IsWhollyKnown() {
		return false
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		e, _ = e.Unmark()
		if e.IsNull() || !isHostObject(e) {
			return false
		}
		if n, _ := e.GetAttr("name").Unmark(); !n.IsKnown() {
			return false
		}
	}
	return true
}

func isHostObject(v cty.Value) bool {
	ty := v.Type()
	if !ty.IsObjectType() {
		return false
	}
	for _, a := range []string{"name", "address", "port", "user", "labels"} {
		if !ty.HasAttribute(a) {
			return false
		}
	}
	n, _ := v.GetAttr("name").Unmark()
	return n.Type() == cty.String && !n.IsNull()
}

// StepHosts evaluates a step's host/hosts expression in ctx and returns the
// host names.
func (c *Config) StepHosts(n *Node, ctx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	if n == nil || n.Step == nil || n.Step.Hosts == nil {
		return nil, nil
	}
	v, diags := n.Step.Hosts.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	names, known, err := HostNames(v)
	rng := n.Step.Hosts.Range()
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid hosts", Detail: err.Error(), Subject: &rng})
	}
	if !known {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Hosts not known yet",
			Detail: fmt.Sprintf("The hosts of %s depend on %v, which have not run.", n.Addr, AfterNodes(v)), Subject: &rng})
	}
	return names, diags
}

func convertString(v cty.Value) (cty.Value, error) {
	return convert.Convert(v, cty.String)
}

// DependencyRange says where n's dependency on dep comes from: its
// depends_on or reference, or for phase order the phase's depends_on entry
// (the phase block when phases between them are empty).
func (c *Config) DependencyRange(n *Node, dep string) hcl.Range {
	if r, ok := n.DependsOnRanges[dep]; ok {
		return r
	}
	if ph := c.Phases[n.Phase]; ph != nil {
		if d := c.Nodes[dep]; d != nil {
			if r, ok := ph.DependsOnRanges[d.Phase]; ok {
				return r
			}
		}
		return ph.DeclRange
	}
	return n.DeclRange
}
