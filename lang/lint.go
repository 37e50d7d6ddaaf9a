package lang

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// commandAttrs are the arguments run by a remote shell, by block type.
var commandAttrs = map[string][]string{
	"run":     {"command", "unless"},
	"release": {"activate"},
	"command": {"command"}, // a check's command probe
}

// LintCommands warns where a shell command (run's command and unless,
// release's activate, a check's command) interpolates a variable as is: a
// value holding a space, a quote or a ; changes the command. An
// interpolation wrapped in shellquote() is safe, and so are variables of
// type number or bool and locals that use no other variable. It reads the
// files' syntax only, so fmt can run it without loading the configuration.
func LintCommands(files map[string]*hcl.File) hcl.Diagnostics {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	l := &lint{safeVars: map[string]bool{}, locals: map[string]hclsyntax.Expression{}}
	var bodies []*hclsyntax.Body
	for _, n := range names {
		if b, ok := files[n].Body.(*hclsyntax.Body); ok {
			bodies = append(bodies, b)
			l.declarations(b)
		}
	}
	for _, b := range bodies {
		l.walk(b)
	}
	return l.diags
}

type lint struct {
	safeVars map[string]bool // variables of type number or bool
	locals   map[string]hclsyntax.Expression
	diags    hcl.Diagnostics
}

func (l *lint) declarations(b *hclsyntax.Body) {
	for _, blk := range b.Blocks {
		switch blk.Type {
		case "variable":
			if len(blk.Labels) == 1 {
				if a, ok := blk.Body.Attributes["type"]; ok {
					if t, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr); ok && len(t.Traversal) == 1 {
						switch t.Traversal.RootName() {
						case "number", "bool":
							l.safeVars[blk.Labels[0]] = true
						}
					}
				}
			}
		case "locals":
			for name, a := range blk.Body.Attributes {
				l.locals[name] = a.Expr
			}
		}
	}
}

func (l *lint) walk(b *hclsyntax.Body) {
	for _, blk := range b.Blocks {
		for _, attr := range commandAttrs[blk.Type] {
			if a, ok := blk.Body.Attributes[attr]; ok {
				l.command(blk.Type, a)
			}
		}
		l.walk(blk.Body)
	}
}

func (l *lint) command(kind string, a *hclsyntax.Attribute) {
	var parts []hclsyntax.Expression
	switch e := a.Expr.(type) {
	case *hclsyntax.TemplateExpr:
		parts = e.Parts
	default:
		return // a whole command from one value ("${var.cmd}") is meant as a command
	}
	for _, p := range parts {
		switch p := p.(type) {
		case *hclsyntax.LiteralValueExpr:
			continue
		case *hclsyntax.FunctionCallExpr:
			if p.Name == "shellquote" {
				continue
			}
		}
		if ref, via := l.unsafeVar(p.Variables(), map[string]bool{}); ref != "" {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Unquoted variable in a shell command",
				Detail: fmt.Sprintf("%s.%s interpolates %s%s into a shell command as it is: a value holding a space, a quote or a ; changes the command. "+
					"Quote it: ${shellquote(%s)}.", kind, a.Name, ref, via, ref),
				Subject: p.Range().Ptr(),
			})
		}
	}
}

// unsafeVar names the first reference to a string variable the traversals
// hold, directly or through locals (via then says which variable); ""
// when there is none.
func (l *lint) unsafeVar(ts []hcl.Traversal, seen map[string]bool) (ref, via string) {
	for _, t := range ts {
		if len(t) < 2 {
			continue
		}
		attr, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		switch t.RootName() {
		case "var":
			if !l.safeVars[attr.Name] {
				return "var." + attr.Name, ""
			}
		case "local":
			if e, ok := l.locals[attr.Name]; ok && !seen[attr.Name] {
				seen[attr.Name] = true
				if r, v := l.unsafeVar(e.Variables(), seen); r != "" {
					if v == "" {
						v = " (from " + r + ")"
					}
					return "local." + attr.Name, v
				}
			}
		}
	}
	return "", ""
}
