// Package template is the `template` step action: a local file rendered with
// HCL template syntax (templatefile semantics, `vars` as its variables), then
// put on the host as upload does. Plan shows a unified diff of the rendered
// text against the remote file with sensitive values masked.
// It imports modules, lang/diags and modules/internal/putfile (the file core it shares with upload).
package template

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/putfile"
)

// Masked replaces sensitive values in plan output.
const Masked = "(sensitive)"

// maxRemote bounds how much of the remote file plan reads for the diff.
const maxRemote = 1 << 20

// Template is the template action.
type Template struct{}

var (
	_ modules.Action        = (*Template)(nil)
	_ modules.Undoer        = (*Template)(nil)
	_ modules.Validator     = (*Template)(nil)
	_ modules.Repeatable    = (*Template)(nil)
	_ modules.Describer     = (*Template)(nil)
	_ modules.UndoDescriber = (*Template)(nil)
)

func (*Template) Kind() string { return "template" }

// Describe: the offline plan shows these arguments.
func (*Template) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"source", "destination"}}
}

// UndoText is what the plan says undoes it without a rollback block.
func (*Template) UndoText() string { return "previous content restored" }

func (*Template) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"source":      &hcldec.AttrSpec{Name: "source", Type: cty.String, Required: true},
		"destination": &hcldec.AttrSpec{Name: "destination", Type: cty.String, Required: true},
		"vars":        &hcldec.AttrSpec{Name: "vars", Type: cty.DynamicPseudoType},
		"mode":        &hcldec.AttrSpec{Name: "mode", Type: cty.String},
		"owner":       &hcldec.AttrSpec{Name: "owner", Type: cty.String},
		"group":       &hcldec.AttrSpec{Name: "group", Type: cty.String},
		"sudo":        &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
	}
}

// functions is the small set a template may call when the Env gives none
// (Env.Functions: the language's pure functions, as templatefile sees them).
var functions = map[string]function.Function{
	"upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc, "trimspace": stdlib.TrimSpaceFunc,
	"join": stdlib.JoinFunc, "split": stdlib.SplitFunc, "format": stdlib.FormatFunc,
	"replace": stdlib.ReplaceFunc, "jsonencode": stdlib.JSONEncodeFunc, "length": stdlib.LengthFunc,
	"lookup": stdlib.LookupFunc, "keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc,
}

// Validate checks destination, mode and owner, that the source exists and
// parses, that it names only variables given in vars, and renders it when
// vars are known, so template errors point into the template file.
func (*Template) Validate(cfg *modules.Config) hcl.Diagnostics {
	ds := putfile.ValidateCommon(cfg)
	if v := modules.Get(cfg.Value, "vars"); v.IsKnown() && !v.IsNull() && !v.Type().IsObjectType() && !v.Type().IsMapType() {
		ds = append(ds, diags.At(*cfg.Range("vars"), "Invalid vars", "vars must be an object, like { version = var.version }."))
		return ds
	}
	src := modules.GetString(cfg.Value, "source")
	if src == "" {
		return ds
	}
	expr, pds := parse(cfg, src)
	if expr == nil {
		return append(ds, pds...)
	}
	ds = append(ds, pds...)
	if pds.HasErrors() {
		return ds
	}
	// An object's attribute names are known even when its values are not.
	names := map[string]bool{}
	if vv := modules.Get(cfg.Value, "vars"); vv.IsNull() {
		// no vars: the template may use none
	} else if vv.Type().IsObjectType() {
		for n := range vv.Type().AttributeTypes() {
			names[n] = true
		}
	} else {
		names = nil // a map: its keys are known only with its value
	}
	vars := varsMap(cfg)
	for n := range vars {
		names[n] = true
	}
	for _, tr := range expr.Variables() {
		if names == nil {
			break
		}
		if !names[tr.RootName()] {
			ds = append(ds, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown template variable",
				Detail:  fmt.Sprintf("The template refers to %q, which vars does not set (at %s).", tr.RootName(), cfg.Range("vars")),
				Subject: tr.SourceRange().Ptr()})
		}
	}
	// Without the language's functions (cfg.Functions; module unit tests),
	// a template calling others is rendered first by plan, with Env's.
	if !ds.HasErrors() && vars != nil && (cfg.Functions != nil || ownFunctionsOnly(expr)) {
		if _, rds := render(expr, vars, cfg.Functions); rds.HasErrors() {
			ds = append(ds, rds...)
		}
	}
	return ds
}

// parse reads and parses the template; a missing file is reported at source.
func parse(cfg *modules.Config, src string) (hclsyntax.Expression, hcl.Diagnostics) {
	p := putfile.LocalPath(cfg, src)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, hcl.Diagnostics{diags.At(*cfg.Range("source"), "Template not found",
			fmt.Sprintf("The template file %q cannot be read (relative paths start at %s): %v", src, cfg.Dir, err))}
	}
	if ds := diags.Nesting(b, p, true); ds != nil {
		return nil, ds
	}
	return hclsyntax.ParseTemplate(b, p, hcl.InitialPos)
}

// varsMap returns vars as template variables (marks kept); nil when unknown.
func varsMap(cfg *modules.Config) map[string]cty.Value {
	v := cfg.Value
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	vars := v.GetAttr("vars")
	if vars.IsNull() {
		return map[string]cty.Value{}
	}
	if !vars.IsWhollyKnown() {
		return nil
	}
	uv, marks := vars.Unmark()
	if !uv.Type().IsObjectType() && !uv.Type().IsMapType() {
		return nil // Validate reports it
	}
	out := map[string]cty.Value{}
	for it := uv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		out[k.AsString()] = e.WithMarks(marks)
	}
	return out
}

// ownFunctionsOnly reports whether expr calls only functions of the small set.
func ownFunctionsOnly(expr hclsyntax.Expression) bool {
	own := true
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if c, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			if _, ok := functions[c.Name]; !ok {
				own = false
			}
		}
		return nil
	})
	return own
}

// render evaluates the template with funcs (nil: the small set); the
// result keeps the marks of the values used.
func render(expr hclsyntax.Expression, vars map[string]cty.Value, funcs map[string]function.Function) (cty.Value, hcl.Diagnostics) {
	if funcs == nil {
		funcs = functions
	}
	val, ds := expr.Value(&hcl.EvalContext{Variables: vars, Functions: funcs})
	if ds.HasErrors() {
		return cty.NilVal, ds
	}
	sv, err := convert.Convert(val, cty.String)
	if err != nil || sv.IsNull() {
		return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid template result",
			Detail: "The template must produce text.", Subject: expr.Range().Ptr()}}
	}
	return sv, nil
}

// rendered is a template's text and its masked form for display.
type rendered struct {
	text     string
	display  string   // sensitive values replaced by Masked
	prefixes []string // starts of lines that carry a sensitive value
	secrets  []string // sensitive values as text
}

const sentinel = "\x00upgrader-sensitive\x00"

func renderFor(cfg *modules.Config, funcs map[string]function.Function) (*rendered, error) {
	src := modules.GetString(cfg.Value, "source")
	expr, ds := parse(cfg, src)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	vars := varsMap(cfg)
	if vars == nil {
		return nil, nil
	}
	val, ds := render(expr, vars, funcs)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	text, _ := val.UnmarkDeep()
	r := &rendered{text: text.AsString(), display: text.AsString()}
	if !val.ContainsMarked() && !anyMarked(vars) {
		return r, nil
	}
	// Render again with every sensitive string replaced by a sentinel, to learn
	// which lines carry one; other sensitive values are masked by their text.
	masked := map[string]cty.Value{}
	for k, v := range vars {
		uv, pvm := v.UnmarkDeepWithPaths()
		mv, _ := cty.Transform(uv, func(p cty.Path, x cty.Value) (cty.Value, error) {
			for _, pm := range pvm {
				if !pm.Path.Equals(p) || !x.IsKnown() || x.IsNull() {
					continue
				}
				if x.Type() == cty.String {
					r.secrets = append(r.secrets, x.AsString())
					return cty.StringVal(sentinel), nil
				}
				if s, err := convert.Convert(x, cty.String); err == nil {
					r.secrets = append(r.secrets, s.AsString())
				}
			}
			return x, nil
		})
		masked[k] = mv
	}
	if mval, ds := render(expr, masked, funcs); !ds.HasErrors() {
		mt, _ := mval.UnmarkDeep()
		for _, line := range strings.Split(mt.AsString(), "\n") {
			if i := strings.Index(line, sentinel); i >= 0 && strings.TrimSpace(line[:i]) != "" {
				r.prefixes = append(r.prefixes, line[:i])
			}
		}
		r.display = strings.ReplaceAll(mt.AsString(), sentinel, Masked)
	}
	r.display = r.mask(r.display)
	return r, nil
}

func anyMarked(vars map[string]cty.Value) bool {
	for _, v := range vars {
		if v.ContainsMarked() {
			return true
		}
	}
	return false
}

// mask hides sensitive values in text from the host: lines that start like a
// rendered line with a secret, and any occurrence of a current secret.
func (r *rendered) mask(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		for _, p := range r.prefixes {
			if strings.HasPrefix(l, p) {
				lines[i] = p + Masked
			}
		}
	}
	s = strings.Join(lines, "\n")
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, Masked)
		}
	}
	return s
}

func files(cfg *modules.Config, r *rendered) []putfile.File {
	return []putfile.File{putfile.BytesFile(modules.GetString(cfg.Value, "destination"), []byte(r.text), 0o644)}
}

func (*Template) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	cfg := req.Config
	dest := modules.GetString(cfg.Value, "destination")
	unknown := &modules.Plan{Change: modules.Update, Summary: dest + " (rendered after apply)", Undo: "previous content restored"}
	if !putfile.Known(cfg, "source", "destination") {
		unknown.Summary = "template (known after apply)"
		return unknown, nil
	}
	r, err := renderFor(cfg, req.Env.Functions())
	if err != nil || r == nil {
		return unknown, err
	}
	opt, err := putfile.OptionsOf(cfg)
	if err != nil {
		return nil, err
	}
	rd, err := req.Env.Reader(req.Host)
	if err != nil {
		return nil, err
	}
	p, err := putfile.PlanFiles(ctx, rd, dest, files(cfg, r), opt)
	if err != nil || p.Change == modules.NoOp {
		return p, err
	}
	remote := ""
	if p.Change == modules.Update {
		b, err := putfile.ReadFile(ctx, rd, dest, maxRemote+1, opt.Sudo)
		if err != nil {
			return nil, modules.OnHost(req.Host, err)
		}
		if len(b) > maxRemote {
			p.Detail = "(remote file larger than 1 MiB: no diff)"
			return p, nil
		}
		remote = string(b)
	}
	p.Detail = unifiedDiff(dest+" (on "+req.Host+")", dest+" (rendered)", r.mask(remote), r.display)
	switch {
	case p.Detail != "":
	case remote != r.text:
		p.Detail = "(only sensitive values changed)"
	default:
		p.Detail = "(same text; mode or owner changes)"
	}
	return p, nil
}

func (*Template) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	r, err := renderFor(req.Config, req.Env.Functions())
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("template vars are not known")
	}
	opt, err := putfile.OptionsOf(req.Config)
	if err != nil {
		return nil, err
	}
	return putfile.ApplyFiles(ctx, req, files(req.Config, r), opt)
}

func (*Template) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	return putfile.UndoFiles(ctx, req, state)
}

// Safe: rendering and writing again is harmless.
func (*Template) Safe(*modules.Config) bool { return true }
