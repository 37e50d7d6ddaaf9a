package lang

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true}, {Name: "error_message", Required: true},
	},
}

type validation struct {
	condition, message hcl.Expression
}

// given is one value supplied for a variable from outside the configuration.
type given struct {
	val   cty.Value
	rng   *hcl.Range // nil for -var and the environment
	from  string     // "-var", "-var-file", "UPGRADER_VAR_x", for messages
	isRaw bool       // a string still to be parsed by the variable's type
	raw   string
}

// decodeVariables is the first phase: variable blocks and their values.
func (l *loader) decodeVariables() {
	type decl struct {
		v           *Variable
		def         hcl.Expression
		defaults    *typeexpr.Defaults // optional(type, default) attributes
		validations []validation
	}
	var decls []*decl
	for _, b := range l.varBlocks {
		name := b.Labels[0]
		if prev, dup := l.cfg.Variables[name]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate variable %q", name), "A variable %q was already declared at %s.", name, firstAt(prev.DeclRange))
			continue
		}
		v := &Variable{Name: name, Type: cty.DynamicPseudoType, DeclRange: b.DefRange, Value: cty.DynamicVal}
		l.cfg.Variables[name] = v
		d := &decl{v: v}
		decls = append(decls, d)
		c := l.content(b.Body, variableSchema, "a variable block")
		if a, ok := c.Attributes["type"]; ok {
			ty, defs, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				v.Type = ty
				d.defaults = defs
			}
		}
		if a, ok := c.Attributes["description"]; ok {
			v.Description, _ = l.literalString(a)
		}
		if a, ok := c.Attributes["sensitive"]; ok {
			val, diags := a.Expr.Value(nil)
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				if bv, err := convert.Convert(val, cty.Bool); err != nil || bv.IsNull() || !bv.IsKnown() {
					l.errorf(a.Expr.Range(), "Invalid sensitive", "sensitive must be true or false.")
				} else {
					v.Sensitive = bv.True()
				}
			}
		}
		if a, ok := c.Attributes["default"]; ok {
			d.def = a.Expr
		}
		for _, vb := range c.Blocks {
			vc := l.content(vb.Body, validationSchema, "a validation block")
			ca, ok1 := vc.Attributes["condition"]
			ma, ok2 := vc.Attributes["error_message"]
			if ok1 && ok2 {
				d.validations = append(d.validations, validation{condition: ca.Expr, message: ma.Expr})
			}
		}
	}

	givens := l.givenValues()

	for _, d := range decls {
		v := d.v
		g, ok := givens[v.Name]
		var val cty.Value
		var src *hcl.Range
		switch {
		case ok:
			src = g.rng
			if g.isRaw {
				var err error
				val, err = parseRaw(g.raw, v.Type)
				if err != nil {
					detail := fmt.Sprintf("The value of %s for variable %q is not valid: %s.", g.from, v.Name, err)
					if v.Sensitive {
						detail = fmt.Sprintf("The value of %s for the sensitive variable %q is not a valid %s.", g.from, v.Name, typeexpr.TypeString(v.Type))
					}
					l.diags = append(l.diags, at(v.DeclRange, fmt.Sprintf("Invalid value for variable %q", v.Name), detail))
					continue
				}
			} else {
				val = g.val
			}
		case d.def != nil:
			r := d.def.Range()
			src = &r
			var diags hcl.Diagnostics
			val, diags = d.def.Value(nil)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				continue
			}
		case l.opts.Unset:
			// Unknown, as an expression waiting for plan: everything that
			// depends on it is checked for shape and type only.
			val = cty.UnknownVal(v.Type)
			l.cfg.Unset = append(l.cfg.Unset, v.Name)
		default:
			l.errorf(v.DeclRange, fmt.Sprintf("No value for required variable %q", v.Name),
				"Set it with -var %s=VALUE, in a -var-file, with the environment variable UPGRADER_VAR_%s, or give it a default.", v.Name, v.Name)
			continue
		}
		subject := v.DeclRange
		if src != nil && !v.Sensitive {
			subject = *src
		}
		if d.defaults != nil {
			val = d.defaults.Apply(val)
		}
		cv, err := convert.Convert(val, v.Type)
		if err != nil {
			l.errorf(subject, fmt.Sprintf("Invalid value for variable %q", v.Name), "The value must be a %s: %s.", typeexpr.TypeString(v.Type), err)
			continue
		}
		if v.Sensitive {
			cv = cv.Mark(SensitiveMark)
		}
		v.Value = cv
		l.varSource[v.Name] = &subject
	}
	l.unknownGivens(givens)

	// Validation rules see every variable (but not locals or hosts).
	varObj := l.varObject()
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": varObj}, Functions: l.cfg.scope.funcs}
	for _, d := range decls {
		v := d.v
		if !v.Value.IsKnown() && v.Value.Type() == cty.DynamicPseudoType {
			continue // no value: already reported
		}
		for _, vr := range d.validations {
			if !l.onlyVarRefs(vr.condition, "a validation condition") || !l.onlyVarRefs(vr.message, "an error_message") {
				continue
			}
			res, diags := vr.condition.Value(ctx)
			l.diags = append(l.diags, scrubDiags(diags)...)
			if diags.HasErrors() {
				continue
			}
			res, _ = res.UnmarkDeep()
			if !res.IsKnown() {
				continue
			}
			res, err := convert.Convert(res, cty.Bool)
			if err != nil || res.IsNull() {
				l.errorf(vr.condition.Range(), "Invalid validation condition", "The condition must be true or false.")
				continue
			}
			if res.True() {
				continue
			}
			msg := "The value is not valid."
			mv, mdiags := vr.message.Value(ctx)
			if !mdiags.HasErrors() && mv.IsWhollyKnown() && !mv.IsNull() {
				if IsSensitive(mv) {
					msg = "The value is not valid (the error message refers to a sensitive value, so it is not shown)."
				} else if s, err := convert.Convert(mv, cty.String); err == nil {
					s, _ = s.UnmarkDeep()
					msg = s.AsString()
				}
			}
			// Point at the value, unless it is a secret: then at the rule.
			subject := v.DeclRange
			if r := l.varSource[v.Name]; r != nil {
				subject = *r
			}
			if v.Sensitive {
				subject = vr.condition.Range()
			}
			r := vr.condition.Range()
			l.diags = append(l.diags, at(subject, fmt.Sprintf("Invalid value for variable %q", v.Name),
				fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", msg, firstAt(r))))
			v.Value = cty.UnknownVal(v.Type)
		}
	}
}

// givenValues collects values from the environment, -var-file and -var, the
// later overriding the earlier (so -var wins, then -var-file, then env).
func (l *loader) givenValues() map[string]*given {
	out := map[string]*given{}
	for name := range l.cfg.Variables {
		if s, ok := l.env("UPGRADER_VAR_" + name); ok {
			out[name] = &given{isRaw: true, raw: s, from: "UPGRADER_VAR_" + name}
		}
	}
	for _, path := range l.opts.VarFiles {
		src, err := os.ReadFile(path)
		if err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read a variables file", Detail: err.Error()})
			continue
		}
		if ds := diags.Nesting(src, path, false); ds != nil {
			l.diags = append(l.diags, ds...)
			continue
		}
		f, diags := l.parser.ParseHCL(src, path)
		l.diags = append(l.diags, diags...)
		if f == nil {
			continue
		}
		l.cfg.Files[path] = f
		attrs, diags := f.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		names := make([]string, 0, len(attrs))
		for n := range attrs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			a := attrs[n]
			v, ok := l.cfg.Variables[n]
			if !ok {
				detail := fmt.Sprintf("The file sets %q, but no variable block declares it.", n)
				if s := suggest(n, l.varNames()); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				}
				l.errorf(a.NameRange, fmt.Sprintf("Value for undeclared variable %q", n), "%s", detail)
				continue
			}
			val, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				if v.Sensitive {
					l.errorf(a.NameRange, fmt.Sprintf("Invalid value for variable %q", n), "Values in a variables file must be literals (no references or functions).")
				} else {
					l.diags = append(l.diags, diags...)
				}
				continue
			}
			r := a.Expr.Range()
			if v.Sensitive {
				r = a.NameRange // never point at (and so print) a secret
			}
			out[n] = &given{val: val, rng: &r, from: "-var-file " + path}
		}
	}
	for _, kv := range l.opts.Vars {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option",
				Detail: "Give it as -var NAME=VALUE."})
			continue
		}
		out[name] = &given{isRaw: true, raw: raw, from: "-var " + name}
	}
	return out
}

// unknownGivens reports -var options for variables nobody declared.
func (l *loader) unknownGivens(givens map[string]*given) {
	var names []string
	for n, g := range givens {
		if _, ok := l.cfg.Variables[n]; !ok && strings.HasPrefix(g.from, "-var ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		detail := fmt.Sprintf("-var sets %q, but no variable block declares it.", n)
		if s := suggest(n, l.varNames()); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Value for undeclared variable %q", n), Detail: detail})
	}
}

func (l *loader) varNames() []string {
	out := make([]string, 0, len(l.cfg.Variables))
	for n := range l.cfg.Variables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// parseRaw turns a -var or environment string into a value: taken as is for
// string (and untyped) variables, parsed as an HCL literal otherwise.
func parseRaw(raw string, ty cty.Type) (cty.Value, error) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	if ds := diags.Nesting([]byte(raw), "<value>", false); ds != nil {
		return cty.NilVal, fmt.Errorf("nested more than %d levels deep", diags.MaxNesting)
	}
	expr, ds := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.Pos{Line: 1, Column: 1})
	if ds.HasErrors() {
		return cty.NilVal, fmt.Errorf("not a valid %s literal", typeexpr.TypeString(ty))
	}
	v, ds := expr.Value(nil)
	if ds.HasErrors() {
		return cty.NilVal, fmt.Errorf("only literal values are allowed")
	}
	return v, nil
}

func (l *loader) varObject() cty.Value {
	m := make(map[string]cty.Value, len(l.cfg.Variables))
	for n, v := range l.cfg.Variables {
		m[n] = v.Value
	}
	return cty.ObjectVal(m)
}

// onlyVarRefs reports references to anything but var.NAME in expr.
func (l *loader) onlyVarRefs(expr hcl.Expression, where string) bool {
	ok := true
	for _, t := range expr.Variables() {
		if t.RootName() != "var" {
			l.errorf(t.SourceRange(), "Invalid reference", "%s may refer only to variables (var.NAME), not to %q.", upperFirst(where), t.RootName())
			ok = false
			continue
		}
		if name, _, has := traversalName(t); has {
			if _, exists := l.cfg.Variables[name]; !exists {
				l.undeclared(t, "variable", name, l.varNames())
				ok = false
			}
		}
	}
	return ok
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// decodeLocals evaluates locals in the order of their references to each
// other; a cycle is reported on every local in it.
func (l *loader) decodeLocals() {
	type local struct {
		attr *hcl.Attribute
		deps []string
	}
	locals := map[string]*local{}
	var order []string
	for _, b := range l.localsBlocks {
		attrs, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		names := make([]string, 0, len(attrs))
		for n := range attrs {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return attrs[names[i]].Range.Start.Byte < attrs[names[j]].Range.Start.Byte })
		for _, n := range names {
			a := attrs[n]
			if prev, dup := locals[n]; dup {
				l.errorf(a.NameRange, fmt.Sprintf("Duplicate local value %q", n), "A local value %q was already defined at %s.", n, firstAt(prev.attr.NameRange))
				continue
			}
			locals[n] = &local{attr: a}
			order = append(order, n)
		}
	}
	localNames := append([]string(nil), order...)
	sort.Strings(localNames)
	bad := map[string]bool{}
	for _, n := range order {
		lc := locals[n]
		for _, t := range lc.attr.Expr.Variables() {
			switch t.RootName() {
			case "var":
				if name, _, has := traversalName(t); has {
					if _, ok := l.cfg.Variables[name]; !ok {
						l.undeclared(t, "variable", name, l.varNames())
						bad[n] = true
					}
				}
			case "local":
				name, _, has := traversalName(t)
				if !has {
					l.errorf(t.SourceRange(), "Invalid reference", "A reference to local values must name one: local.NAME.")
					bad[n] = true
					continue
				}
				if _, ok := locals[name]; !ok {
					l.undeclared(t, "local value", name, localNames)
					bad[n] = true
					continue
				}
				lc.deps = append(lc.deps, name)
			default:
				l.errorf(t.SourceRange(), "Invalid reference in a local value",
					"Local values may refer only to variables (var.NAME), other local values (local.NAME) and functions, not to %q.", t.RootName())
				bad[n] = true
			}
		}
	}

	// Depth-first evaluation; a back edge is a cycle.
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	varObj := l.varObject()
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		lc := locals[n]
		for _, d := range lc.deps {
			switch color[d] {
			case white:
				visit(d)
			case grey:
				// Every local from d to the top of the stack is on the cycle.
				i := len(stack) - 1
				for i >= 0 && stack[i] != d {
					i--
				}
				cycle := append([]string(nil), stack[i:]...)
				path := make([]string, 0, len(cycle)+1)
				for _, c := range cycle {
					path = append(path, "local."+c)
				}
				path = append(path, "local."+d)
				for _, c := range cycle {
					if !bad[c] {
						l.errorf(locals[c].attr.NameRange, "Cycle in local values", "These local values refer to each other: %s.", strings.Join(path, " -> "))
					}
					bad[c] = true
				}
			}
			if bad[d] {
				bad[n] = true
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		if bad[n] {
			l.cfg.Locals[n] = cty.DynamicVal
			return
		}
		deps := make(map[string]cty.Value, len(lc.deps))
		for _, d := range lc.deps {
			deps[d] = l.cfg.Locals[d]
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": varObj, "local": cty.ObjectVal(deps)},
			Functions: l.cfg.scope.funcs,
		}
		v, diags := lc.attr.Expr.Value(ctx)
		l.diags = append(l.diags, scrubDiags(diags)...)
		if diags.HasErrors() {
			v = cty.DynamicVal
		}
		l.cfg.Locals[n] = v
	}
	for _, n := range order {
		if color[n] == white {
			visit(n)
		}
	}
}

// literalString evaluates an attribute that must be a constant string.
func (l *loader) literalString(a *hcl.Attribute) (string, bool) {
	v, diags := a.Expr.Value(nil)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be a string.", a.Name)
		return "", false
	}
	return s.AsString(), true
}

// scrubDiags drops the evaluation context from diagnostics whose
// expression touches a sensitive value, so no renderer can print it.
func scrubDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if d.Expression == nil || d.EvalContext == nil {
			continue
		}
		for _, t := range d.Expression.Variables() {
			v, vd := t.TraverseAbs(d.EvalContext)
			if vd.HasErrors() || IsSensitive(v) {
				if !vd.HasErrors() && (d.Summary == "Error in function call" || d.Summary == "Invalid function argument") {
					// A function's message may quote its argument (jsondecode does).
					d.Detail = "The function failed; its message is hidden because an argument is sensitive."
				}
				d.EvalContext = nil
				d.Expression = nil
				break
			}
		}
	}
	return diags
}
