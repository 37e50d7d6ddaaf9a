package lang

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// pendingNode is a node while the graph is being built.
type pendingNode struct {
	kind, name string
	block      *hcl.Block
	node       *Node
	explicit   []depItem // depends_on
	refs       refs      // references in expressions
}

// depItem is one element of a depends_on list.
type depItem struct {
	addr  string // a node address, or "" for a phase
	phase string // a phase name
	rng   hcl.Range
}

type pendingPhase struct {
	phase     *Phase
	dependsOn []depItem
	checks    []hcl.Traversal // escalate.checks
}

const (
	defaultCheckInterval = 2 * time.Second
	defaultCheckTimeout  = 10 * time.Second
)

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("negative duration")
	}
	return d, err
}

var commonNodeAttrs = []hcl.AttributeSchema{{Name: "depends_on"}, {Name: "when"}}

// nodeSchemas are the body schemas of the kinds lang decodes, built once
// per Load (they depend on the registered action and probe kinds).
type nodeSchemas struct {
	step, check, gate, rollback, module *hcl.BodySchema
}

func (l *loader) bodySchemas() *nodeSchemas {
	if l.schemaCache != nil {
		return l.schemaCache
	}
	s := &nodeSchemas{
		step: &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{
			{Name: "host"}, {Name: "hosts"}, {Name: "batch_size"}, {Name: "backup_required"},
		}, commonNodeAttrs...)},
		check: &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{
			{Name: "retries"}, {Name: "interval"}, {Name: "timeout"},
		}, commonNodeAttrs...)},
		gate:     &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{{Name: "message"}, {Name: "timeout"}, {Name: "on_timeout"}, {Name: "approvers"}}, commonNodeAttrs...)},
		rollback: &hcl.BodySchema{},
		// a module node's own arguments; the rest is the module's body
		module: &hcl.BodySchema{Attributes: commonNodeAttrs, Blocks: []hcl.BlockHeaderSchema{{Type: "rollback"}}},
	}
	for _, k := range slices.Sorted(maps.Keys(l.schemas.Actions)) {
		s.step.Blocks = append(s.step.Blocks, hcl.BlockHeaderSchema{Type: k})
		s.rollback.Blocks = append(s.rollback.Blocks, hcl.BlockHeaderSchema{Type: k})
	}
	s.step.Blocks = append(s.step.Blocks, hcl.BlockHeaderSchema{Type: "rollback"})
	for _, k := range slices.Sorted(maps.Keys(l.schemas.Probes)) {
		s.check.Blocks = append(s.check.Blocks, hcl.BlockHeaderSchema{Type: k})
	}
	l.schemaCache = s
	return s
}

func (l *loader) decodeGraph(bodies []*hclsyntax.Body) {
	phases := l.decodePhases()

	// Register every node first, so references can be checked.
	var addrs []string
	for _, nb := range l.nodeBlocks {
		b := nb.block
		kind, name := b.Type, b.Labels[0]
		addr := kind + "." + name
		if prev, dup := l.pending[addr]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate %s %q", kind, name), "A %s %q was already declared at %s. Names are unique per kind.", kind, name, firstAt(prev.block.DefRange))
			continue
		}
		n := &Node{Addr: addr, Kind: kind, Name: name, Phase: nb.phase, DeclRange: b.DefRange}
		l.pending[addr] = &pendingNode{kind: kind, name: name, block: b, node: n}
		l.cfg.Nodes[addr] = n
		addrs = append(addrs, addr)
		if nb.phase != "" {
			if ph := l.cfg.Phases[nb.phase]; ph != nil {
				ph.Nodes = append(ph.Nodes, addr)
			}
		}
	}
	sort.Strings(addrs)
	l.buildNodeScope(bodies)
	ctx := l.cfg.EvalContext(RunInfo{}, nil)

	l.decodeNodes(addrs, ctx)
	l.resolvePhases(phases)
	l.linkGraph(addrs)
}

// refWalker finds the nodes that expressions name, without building
// traversal lists. A for-expression variable that shadows a kind only adds
// a node to the scope, harmlessly; depends_on is never evaluated, so it is
// skipped.
type refWalker struct {
	l          *loader
	referenced map[string]bool
	skip       int
}

func (w *refWalker) Enter(n hclsyntax.Node) hcl.Diagnostics {
	switch n := n.(type) {
	case *hclsyntax.Attribute:
		if n.Name == "depends_on" {
			w.skip++
		}
	case *hclsyntax.ScopeTraversalExpr:
		if w.skip == 0 {
			if name, _, ok := traversalName(n.Traversal); ok && w.l.isNodeKind(n.Traversal.RootName()) {
				w.referenced[n.Traversal.RootName()+"."+name] = true
			}
		}
	}
	return nil
}

func (w *refWalker) Exit(n hclsyntax.Node) hcl.Diagnostics {
	if a, ok := n.(*hclsyntax.Attribute); ok && a.Name == "depends_on" {
		w.skip--
	}
	return nil
}

// decodeNodes decodes every node's body, in parallel for big
// configurations: each worker is a copy of the loader with its own
// diagnostics (everything else it touches is read-only or per node).
func (l *loader) decodeNodes(addrs []string, ctx *hcl.EvalContext) {
	l.bodySchemas() // built once, before the workers share it
	workers := runtime.GOMAXPROCS(0)
	if len(addrs) < 200 || workers < 2 {
		for _, addr := range addrs {
			l.decodeNode(l.pending[addr], ctx)
		}
		return
	}
	chunk := (len(addrs) + workers - 1) / workers
	copies := make([]*loader, 0, workers)
	var wg sync.WaitGroup
	for start := 0; start < len(addrs); start += chunk {
		end := min(start+chunk, len(addrs))
		w := *l
		w.diags = nil
		copies = append(copies, &w)
		wg.Add(1)
		go func(w *loader, part []string) {
			defer wg.Done()
			for _, addr := range part {
				w.decodeNode(w.pending[addr], ctx)
			}
		}(&w, addrs[start:end])
	}
	wg.Wait()
	for _, w := range copies {
		l.diags = append(l.diags, w.diags...)
	}
}

// buildNodeScope builds the node objects of the scope: name and kind known,
// outputs unknown. Only nodes that some expression names are in it: node
// references are always static (KIND.NAME), so no expression can reach the
// others, and big configurations stay small.
func (l *loader) buildNodeScope(bodies []*hclsyntax.Body) {
	rw := &refWalker{l: l, referenced: map[string]bool{}}
	for _, b := range bodies {
		hclsyntax.Walk(b, rw)
	}
	referenced := rw.referenced
	s := l.cfg.scope
	s.kindNames = map[string][]string{}
	s.kindObjs = map[string]cty.Value{}
	for _, k := range l.nodeKinds() {
		s.kindNames[k] = nil
	}
	for addr, p := range l.pending {
		if referenced[addr] {
			s.kindNames[p.kind] = append(s.kindNames[p.kind], p.name)
		}
	}
	for kind, names := range s.kindNames {
		sort.Strings(names)
		outs := builtinOutputs[kind]
		if outs == nil {
			outs = l.schemas.Outputs[kind]
		}
		attrs := make(map[string]cty.Value, len(names))
		for _, n := range names {
			attrs[n] = nodeObject(kind, n, outs)
		}
		s.kindObjs[kind] = cty.ObjectVal(attrs)
	}
}

// checkAttr checks an attribute's references (adding node dependencies to
// p) and reports whether it can be evaluated.
func (l *loader) checkAttr(p *pendingNode, a *hcl.Attribute) bool {
	before := len(p.refs.bad)
	l.checkRefs(a.Expr.Variables(), &p.refs)
	return len(p.refs.bad) == before
}

// evalNode evaluates a node's own argument in the load scope, where node
// outputs are unknown. known is false for unknown values (not an error).
func (l *loader) evalNode(p *pendingNode, a *hcl.Attribute, ctx *hcl.EvalContext, ty cty.Type) (v cty.Value, ok bool) {
	if !l.checkAttr(p, a) {
		return cty.DynamicVal, false
	}
	v, diags := a.Expr.Value(ctx)
	l.diags = append(l.diags, scrubDiags(diags)...)
	if diags.HasErrors() {
		return cty.DynamicVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be %s: %s.", a.Name, friendly(ty), err)
		return cty.DynamicVal, false
	}
	return cv, true
}

// evalKnown is evalNode for arguments that must be known before the run.
func (l *loader) evalKnown(p *pendingNode, a *hcl.Attribute, ctx *hcl.EvalContext, ty cty.Type) (cty.Value, bool) {
	v, ok := l.evalNode(p, a, ctx, ty)
	if !ok {
		return v, false
	}
	if !v.IsWhollyKnown() {
		if len(AfterNodes(v)) == 0 {
			return cty.DynamicVal, false // unknown because of an error reported already
		}
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be known before the run starts; %s.", a.Name, afterText(AfterNodes(v)))
		return cty.DynamicVal, false
	}
	if v.IsNull() {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must not be null.", a.Name)
		return cty.DynamicVal, false
	}
	if IsSensitive(v) {
		l.sensitiveNotAllowed(a)
		return cty.DynamicVal, false
	}
	v, _ = v.UnmarkDeep()
	return v, true
}

func (l *loader) decodeNode(p *pendingNode, ctx *hcl.EvalContext) {
	n := p.node
	body := p.block.Body
	var content *hcl.BodyContent
	switch p.kind {
	case KindStep:
		content = l.content(body, l.bodySchemas().step, "a step")
		l.decodeStep(p, content, ctx)
	case KindCheck:
		content = l.content(body, l.bodySchemas().check, "a check")
		l.decodeCheck(p, content, ctx)
	case KindGate:
		content = l.content(body, l.bodySchemas().gate, "a gate")
		l.decodeGate(p, content, ctx)
	default:
		c, remain, diags := body.PartialContent(l.bodySchemas().module)
		l.diags = append(l.diags, diags...)
		content = c
		n.Body = remain
		n.Spec = l.schemas.Nodes[p.kind]
		n.Loaded = l.decodeModuleBody(p, remain, n.Spec, ctx)
		if c != nil {
			n.Rollback = l.decodeRollback(p, c.Blocks, "A "+p.kind+" node", ctx)
		}
	}
	if content == nil {
		return
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		p.explicit = l.parseDependsOn(a, true)
	}
	if a, ok := content.Attributes["when"]; ok {
		n.When = a.Expr
		if v, ok := l.evalNode(p, a, ctx, cty.Bool); ok && v.IsKnown() && v.IsNull() {
			l.errorf(a.Expr.Range(), "Invalid when", "when must be true or false, not null.")
		}
	}
}

// decodeModuleBody checks a module body's references and decodes it once,
// so wrong types and missing or unknown arguments show at validate time.
func (l *loader) decodeModuleBody(p *pendingNode, body hcl.Body, spec hcldec.Spec, ctx *hcl.EvalContext) *Decoded {
	before := len(p.refs.bad)
	if sb, ok := body.(*hclsyntax.Body); ok {
		l.checkRefs(bodyVariables(sb, body != p.block.Body, nil), &p.refs)
	} else if spec != nil {
		l.checkRefs(hcldec.Variables(body, spec), &p.refs)
	}
	if spec == nil {
		_, _, diags := DecodeBody(body, spec, ctx)
		l.diags = append(l.diags, diags...)
		return nil
	}
	val, diags := hcldec.Decode(body, spec, ctx)
	l.diags = append(l.diags, scrubDiags(dropContained(diags, p.refs.bad[before:]))...)
	if diags.HasErrors() || len(p.refs.bad) > before {
		return nil
	}
	return &Decoded{Value: val}
}

func (l *loader) decodeStep(p *pendingNode, c *hcl.BodyContent, ctx *hcl.EvalContext) {
	n := p.node
	s := &Step{BackupRequired: true}
	n.Step = s
	ha, hasHost := c.Attributes["host"]
	hsa, hasHosts := c.Attributes["hosts"]
	switch {
	case hasHost && hasHosts:
		l.errorf(hsa.NameRange, "Conflicting arguments", "A step has either host = host.NAME or hosts = [host.A, host.B], not both.")
	case !hasHost && !hasHosts:
		l.errorf(n.DeclRange, "Missing host", "A step runs on host = host.NAME or on hosts = [host.A, host.B].")
	}
	for _, a := range []*hcl.Attribute{ha, hsa} {
		if a == nil || s.Hosts != nil {
			continue
		}
		s.Hosts = a.Expr
		if v, ok := l.evalNode(p, a, ctx, cty.DynamicPseudoType); ok {
			names, known, err := HostNames(v)
			switch {
			case err != nil:
				l.errorf(a.Expr.Range(), "Invalid "+a.Name, "%s", err)
			case known && len(names) == 0:
				l.errorf(a.Expr.Range(), "Invalid "+a.Name, "The step has no hosts: the list is empty.")
			case known:
				s.HostNames = names
			}
		}
	}
	if a, ok := c.Attributes["batch_size"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.Number); ok {
			bf := v.AsBigFloat()
			i, _ := bf.Int64()
			if !bf.IsInt() || i < 0 || i > 1<<20 {
				l.errorf(a.Expr.Range(), "Invalid batch_size", "batch_size must be a whole number, 0 (all hosts at once) or more.")
			} else {
				s.BatchSize = int(i)
			}
		}
	}
	if a, ok := c.Attributes["backup_required"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.Bool); ok {
			s.BackupRequired = v.True()
			if !s.BackupRequired {
				s.WaiverRange = a.Range
			}
		}
	}
	var rollbacks []*hcl.Block
	for _, b := range c.Blocks {
		if b.Type != "rollback" {
			s.Actions = append(s.Actions, l.decodeChild(p, b, l.schemas.Actions[b.Type], ctx))
			continue
		}
		rollbacks = append(rollbacks, b)
	}
	s.Rollback = l.decodeRollback(p, rollbacks, "A step", ctx)
	if len(s.Actions) == 0 {
		l.errorf(n.DeclRange, "Step without actions", "A step needs at least one action block (%s), run top to bottom on each of its hosts.", strings.Join(slices.Sorted(maps.Keys(l.schemas.Actions)), ", "))
	}
}

// decodeRollback decodes the rollback blocks of a node (at most one): its
// actions, in order; nil when there is none. who names the node kind.
func (l *loader) decodeRollback(p *pendingNode, blocks []*hcl.Block, who string, ctx *hcl.EvalContext) []*Block {
	var out []*Block
	for _, b := range blocks {
		if b.Type != "rollback" {
			continue
		}
		if out != nil {
			l.errorf(b.DefRange, "Duplicate rollback block", "%s has at most one rollback block; the first is at %s.", who, firstAt(blocks[0].DefRange))
			continue
		}
		rc := l.content(b.Body, l.bodySchemas().rollback, "a rollback block")
		out = []*Block{}
		for _, ab := range rc.Blocks {
			out = append(out, l.decodeChild(p, ab, l.schemas.Actions[ab.Type], ctx))
		}
	}
	return out
}

// bodyVariables collects the references of every expression in a native
// syntax body and its nested blocks: what hcldec.Variables finds, without
// building a schema per body (the hot path of big configurations).
// A module node's body still holds depends_on and when (hidden, checked
// by decodeNode): skipCommon leaves them out.
func bodyVariables(b *hclsyntax.Body, skipCommon bool, out []hcl.Traversal) []hcl.Traversal {
	for name, a := range b.Attributes {
		if skipCommon && (name == "depends_on" || name == "when") {
			continue
		}
		out = append(out, a.Expr.Variables()...)
	}
	for _, nb := range b.Blocks {
		if skipCommon && nb.Type == "rollback" {
			continue // a module node's rollback block: its actions are checked on their own
		}
		out = bodyVariables(nb.Body, false, out)
	}
	return out
}

func (l *loader) decodeChild(p *pendingNode, b *hcl.Block, spec hcldec.Spec, ctx *hcl.EvalContext) *Block {
	d := l.decodeModuleBody(p, b.Body, spec, ctx)
	return &Block{Kind: b.Type, Body: b.Body, Spec: spec, DeclRange: b.DefRange, Loaded: d}
}

func (l *loader) decodeGate(p *pendingNode, c *hcl.BodyContent, ctx *hcl.EvalContext) {
	g := &Gate{Message: fmt.Sprintf("Approve %s?", p.node.Addr), DeclRange: p.node.DeclRange}
	p.node.Gate = g
	if c == nil {
		return
	}
	if a, ok := c.Attributes["message"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.String); ok {
			g.Message = v.AsString()
		}
	}
	if a, ok := c.Attributes["timeout"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.String); ok {
			d, err := parseDuration(v.AsString())
			if err != nil || d == 0 {
				l.errorf(a.Expr.Range(), "Invalid timeout", "timeout must be a positive duration like \"30m\", \"8h\" or \"72h\", not %q.", v.AsString())
			} else {
				g.Timeout = d
			}
		}
	}
	if a, ok := c.Attributes["on_timeout"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.String); ok {
			switch s := v.AsString(); s {
			case "reject", "approve":
				g.OnTimeout = s
			default:
				l.errorf(a.Expr.Range(), "Invalid on_timeout", "on_timeout must be \"reject\" or \"approve\", not %q.", s)
			}
			if _, ok := c.Attributes["timeout"]; !ok && g.OnTimeout != "" {
				l.errorf(a.Expr.Range(), "on_timeout without timeout", "on_timeout says what happens when the gate's timeout passes; set timeout = \"8h\" (for example) too.")
			}
		}
	}
	if g.OnTimeout == "" && g.Timeout > 0 {
		g.OnTimeout = "reject"
	}
	if a, ok := c.Attributes["approvers"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.List(cty.String)); ok {
			seen := map[string]bool{}
			for _, e := range v.AsValueSlice() {
				if e.IsNull() || strings.TrimSpace(e.AsString()) == "" {
					l.errorf(a.Expr.Range(), "Invalid approvers", "approvers is a list of user names; an entry is empty.")
					continue
				}
				name := e.AsString()
				if seen[name] {
					l.errorf(a.Expr.Range(), "Invalid approvers", "%q is listed twice in approvers.", name)
					continue
				}
				seen[name] = true
				g.Approvers = append(g.Approvers, name)
			}
			if v.LengthInt() == 0 {
				l.errorf(a.Expr.Range(), "Invalid approvers", "approvers is empty, so nobody could decide this gate; leave it out to let anyone decide.")
			}
		}
	}
}

func (l *loader) decodeCheck(p *pendingNode, c *hcl.BodyContent, ctx *hcl.EvalContext) {
	n := p.node
	ch := &Check{Interval: defaultCheckInterval, Timeout: defaultCheckTimeout}
	n.Check = ch
	if a, ok := c.Attributes["retries"]; ok {
		if v, ok := l.evalKnown(p, a, ctx, cty.Number); ok {
			bf := v.AsBigFloat()
			i, _ := bf.Int64()
			if !bf.IsInt() || i < 0 || i > 10000 {
				l.errorf(a.Expr.Range(), "Invalid retries", "retries must be a whole number from 0 to 10000.")
			} else {
				ch.Retries = int(i)
			}
		}
	}
	for _, name := range []string{"interval", "timeout"} {
		a, ok := c.Attributes[name]
		if !ok {
			continue
		}
		if v, ok := l.evalKnown(p, a, ctx, cty.String); ok {
			d, err := parseDuration(v.AsString())
			if err != nil {
				l.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a duration like \"3s\", \"5m\" or \"72h\", not %q.", name, v.AsString())
				continue
			}
			if name == "interval" {
				ch.Interval = d
			} else {
				ch.Timeout = d
			}
		}
	}
	for _, b := range c.Blocks {
		ch.Probes = append(ch.Probes, l.decodeChild(p, b, l.schemas.Probes[b.Type], ctx))
	}
	if len(ch.Probes) == 0 {
		l.errorf(n.DeclRange, "Check without probes", "A check needs at least one probe block (%s).", strings.Join(slices.Sorted(maps.Keys(l.schemas.Probes)), ", "))
	}
}

// parseDependsOn reads a depends_on list: node addresses and phases.
func (l *loader) parseDependsOn(a *hcl.Attribute, nodesAllowed bool) []depItem {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		l.errorf(a.Expr.Range(), "Invalid depends_on", "depends_on is a list of references: depends_on = [backup.db, phase.prepare].")
		return nil
	}
	var out []depItem
	for _, e := range exprs {
		t, diags := hcl.AbsTraversalForExpr(e)
		name, _, has := traversalName(t)
		if diags.HasErrors() || !has || len(t) != 2 {
			if nodesAllowed {
				l.errorf(e.Range(), "Invalid depends_on", "Each element is a node (KIND.NAME, like backup.db) or a phase (phase.NAME), without attributes or quotes.")
			} else {
				l.errorf(e.Range(), "Invalid depends_on", "A phase depends on phases: depends_on = [phase.NAME].")
			}
			continue
		}
		root := t.RootName()
		switch {
		case root == "phase":
			if _, ok := l.cfg.Phases[name]; !ok {
				l.undeclared(t, "phase", name, slices.Sorted(maps.Keys(l.cfg.Phases)))
				continue
			}
			out = append(out, depItem{phase: name, rng: t.SourceRange()})
		case nodesAllowed && l.isNodeKind(root):
			addr := root + "." + name
			if _, ok := l.pending[addr]; !ok {
				l.undeclaredNode(t, root, name)
				continue
			}
			out = append(out, depItem{addr: addr, rng: t.SourceRange()})
		default:
			kinds := append([]string{"phase"}, l.nodeKinds()...)
			if !nodesAllowed {
				kinds = []string{"phase"}
			}
			detail := fmt.Sprintf("%q is not a node kind or phase. depends_on lists %s.", root, strings.Join(kinds, ", "))
			if s := suggest(root, kinds); s != "" {
				detail += fmt.Sprintf(" Did you mean %s.%s?", s, name)
			}
			l.errorf(t.SourceRange(), "Invalid depends_on", "%s", detail)
		}
	}
	return out
}

var phaseSchema = func(l *loader) *hcl.BodySchema {
	s := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "depends_on"}, {Name: "on_failure"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "escalate"}},
	}
	for _, k := range l.nodeKinds() {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: k, LabelNames: []string{"name"}})
	}
	return s
}

var escalateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "checks", Required: true}, {Name: "rollback"}},
}

// decodePhases decodes phase blocks and files their nodes; references are
// resolved later by resolvePhases.
func (l *loader) decodePhases() map[string]*pendingPhase {
	out := map[string]*pendingPhase{}
	ctx := l.staticCtx()
	var later []func()
	for _, b := range l.phaseBlocks {
		name := b.Labels[0]
		if prev, dup := l.cfg.Phases[name]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate phase %q", name), "A phase %q was already declared at %s.", name, firstAt(prev.DeclRange))
			continue
		}
		ph := &Phase{Name: name, OnFailure: "rollback", DeclRange: b.DefRange}
		l.cfg.Phases[name] = ph
		pp := &pendingPhase{phase: ph}
		out[name] = pp
		c := l.content(b.Body, phaseSchema(l), "a phase")
		if a, ok := c.Attributes["on_failure"]; ok {
			if s, ok := l.evalString(a, ctx, "on_failure"); ok {
				if s != "rollback" && s != "stop" {
					l.errorf(a.Expr.Range(), "Invalid on_failure", "on_failure is \"rollback\" (undo the phase's completed nodes) or \"stop\" (leave them), not %q.", s)
				} else {
					ph.OnFailure = s
				}
			}
		}
		if a, ok := c.Attributes["depends_on"]; ok {
			// Phases may be declared in any order: resolve once all are known.
			later = append(later, func() { pp.dependsOn = l.parseDependsOn(a, false) })
		}
		for _, cb := range c.Blocks {
			if cb.Type != "escalate" {
				if l.labels(cb, 1) {
					l.nodeBlocks = append(l.nodeBlocks, nodeBlock{block: cb, phase: name})
				}
				continue
			}
			if ph.Escalate != nil {
				l.errorf(cb.DefRange, "Duplicate escalate block", "A phase has at most one escalate block; the first is at %s.", firstAt(ph.Escalate.Range))
				continue
			}
			ph.Escalate = &Escalate{Rollback: "all", Range: cb.DefRange}
			ec := l.content(cb.Body, escalateSchema, "an escalate block")
			if a, ok := ec.Attributes["rollback"]; ok {
				if s, ok := l.evalString(a, ctx, "rollback"); ok {
					if s != "all" {
						l.errorf(a.Expr.Range(), "Invalid rollback", "rollback = \"all\" rolls back every completed phase, newest first; no other value is known, not %q.", s)
					}
				}
			}
			if a, ok := ec.Attributes["checks"]; ok {
				exprs, diags := hcl.ExprList(a.Expr)
				if diags.HasErrors() {
					l.errorf(a.Expr.Range(), "Invalid checks", "checks is a list of check nodes: checks = [check.regression].")
					continue
				}
				for _, e := range exprs {
					t, diags := hcl.AbsTraversalForExpr(e)
					if _, _, has := traversalName(t); diags.HasErrors() || !has || len(t) != 2 || t.RootName() != KindCheck {
						l.errorf(e.Range(), "Invalid checks", "Each element is a check node: check.NAME.")
						continue
					}
					pp.checks = append(pp.checks, t)
				}
			}
		}
	}
	for _, f := range later {
		f()
	}
	return out
}

// resolvePhases checks escalate references, reports phase cycles and sets
// PhaseOrder.
func (l *loader) resolvePhases(phases map[string]*pendingPhase) {
	names := slices.Sorted(maps.Keys(phases))
	for _, name := range names {
		pp := phases[name]
		for _, t := range pp.checks {
			cn, _, _ := traversalName(t)
			addr := KindCheck + "." + cn
			if _, ok := l.pending[addr]; !ok {
				l.undeclaredNode(t, KindCheck, cn)
				continue
			}
			pp.phase.Escalate.Checks = append(pp.phase.Escalate.Checks, addr)
		}
		pp.phase.DependsOnRanges = map[string]hcl.Range{}
		for _, d := range pp.dependsOn {
			if _, dup := pp.phase.DependsOnRanges[d.phase]; dup {
				continue
			}
			pp.phase.DependsOnRanges[d.phase] = d.rng
			pp.phase.DependsOn = append(pp.phase.DependsOn, d.phase)
		}
	}

	// Cycles: depth first; every phase on a cycle gets a diagnostic at its
	// depends_on entry that closes it.
	color := map[string]int{}
	var stack []string
	onCycle := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		color[n] = 1
		stack = append(stack, n)
		for _, d := range phases[n].dependsOn {
			switch color[d.phase] {
			case 0:
				visit(d.phase)
			case 1:
				i := len(stack) - 1
				for i >= 0 && stack[i] != d.phase {
					i--
				}
				cycle := stack[i:]
				path := make([]string, 0, len(cycle)+1)
				for _, c := range cycle {
					path = append(path, "phase."+c)
				}
				path = append(path, "phase."+d.phase)
				for j, c := range cycle {
					if onCycle[c] {
						continue
					}
					onCycle[c] = true
					next := d.phase
					if j+1 < len(cycle) {
						next = cycle[j+1]
					}
					rng := phases[c].phase.DeclRange
					for _, dd := range phases[c].dependsOn {
						if dd.phase == next {
							rng = dd.rng
						}
					}
					l.errorf(rng, "Cycle in phase order", "These phases depend on each other: %s.", strings.Join(path, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = 2
	}
	for _, n := range names {
		if color[n] == 0 {
			visit(n)
		}
	}

	// A stable topological order (Kahn, ties by name); phases on a cycle last.
	indeg := map[string]int{}
	dependents := map[string][]string{}
	for _, n := range names {
		for _, d := range phases[n].phase.DependsOn {
			indeg[n]++
			dependents[d] = append(dependents[d], n)
		}
	}
	var ready []string
	for _, n := range names {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	done := map[string]bool{}
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		done[n] = true
		l.cfg.PhaseOrder = append(l.cfg.PhaseOrder, n)
		for _, m := range dependents[n] {
			indeg[m]--
			if indeg[m] == 0 {
				ready = append(ready, m)
			}
		}
	}
	for _, n := range names {
		if !done[n] {
			l.cfg.PhaseOrder = append(l.cfg.PhaseOrder, n)
		}
	}
}

// linkGraph fills Node.DependsOn from depends_on, references and phase
// order.
func (l *loader) linkGraph(addrs []string) {
	deps := map[string]map[string]hcl.Range{}
	add := func(n, dep string, rng hcl.Range) {
		m := deps[n]
		if m == nil {
			m = map[string]hcl.Range{}
			deps[n] = m
		}
		if _, ok := m[dep]; !ok {
			m[dep] = rng
		}
	}
	for _, a := range addrs {
		p := l.pending[a]
		for _, d := range p.explicit {
			if d.addr != "" {
				add(a, d.addr, d.rng)
			}
		}
		for dep, rng := range p.refs.deps {
			add(a, dep, rng)
		}
	}

	// Phase order, reduced: the entry nodes of a phase (those with no
	// dependency inside it) follow the exit nodes of each phase it depends
	// on (those nothing inside depends on). Transitively that orders every
	// node of the phase after every node there, without |A|x|B| edges.
	entries := map[string][]string{}
	exits := map[string][]string{}
	for name, ph := range l.cfg.Phases {
		in := map[string]bool{}
		for _, a := range ph.Nodes {
			in[a] = true
		}
		hasDependent := map[string]bool{}
		for _, a := range ph.Nodes {
			inner := false
			for d := range deps[a] {
				if in[d] && d != a {
					inner = true
					hasDependent[d] = true
				}
			}
			if !inner {
				entries[name] = append(entries[name], a)
			}
		}
		for _, a := range ph.Nodes {
			if !hasDependent[a] {
				exits[name] = append(exits[name], a)
			}
		}
	}
	// exitsOf looks through empty phases to the phases they depend on.
	memo := map[string][]string{}
	visiting := map[string]bool{}
	var exitsOf func(string) []string
	exitsOf = func(ph string) []string {
		if v, ok := memo[ph]; ok {
			return v
		}
		if visiting[ph] {
			return nil // a phase cycle, reported already
		}
		visiting[ph] = true
		out := exits[ph]
		if len(l.cfg.Phases[ph].Nodes) == 0 {
			for _, d := range l.cfg.Phases[ph].DependsOn {
				out = append(out, exitsOf(d)...)
			}
		}
		visiting[ph] = false
		memo[ph] = out
		return out
	}
	for _, a := range addrs {
		p := l.pending[a]
		for _, d := range p.explicit {
			if d.phase == "" {
				continue
			}
			if d.phase == p.node.Phase {
				l.errorf(d.rng, "Invalid depends_on", "%s is inside phase %q: it can not depend on its own phase.", a, d.phase)
				continue
			}
			for _, e := range exitsOf(d.phase) {
				add(a, e, d.rng)
			}
		}
	}
	// Phase-order dependencies go into DependsOn only (see DependencyRange).
	order := map[string][]string{}
	for name, ph := range l.cfg.Phases {
		var prevs []string
		for _, d := range ph.DependsOn {
			prevs = append(prevs, exitsOf(d)...)
		}
		if len(prevs) == 0 {
			continue
		}
		for _, a := range entries[name] {
			order[a] = prevs
		}
	}
	for _, a := range addrs {
		n := l.pending[a].node
		m := deps[a]
		if m == nil {
			m = map[string]hcl.Range{}
		}
		all := make([]string, 0, len(m)+len(order[a]))
		for d := range m {
			all = append(all, d)
		}
		for _, d := range order[a] {
			if _, ok := m[d]; !ok {
				all = append(all, d)
			}
		}
		sort.Strings(all)
		all = slices.Compact(all)
		n.DependsOn = all
		n.DependsOnRanges = m
	}
}
