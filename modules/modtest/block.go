package modtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/upgrader-dev/upgrader/lang/langtest"
	"github.com/upgrader-dev/upgrader/modules"
)

// DecodeBlock parses src (an HCL file holding one block, e.g. `upload { ... }`)
// and decodes the block's body with spec, as the executor would: the result
// carries attribute ranges so Validate can point at FILE:LINE:COL. dir is the
// configuration directory relative local paths start from.
func DecodeBlock(filename string, src []byte, spec hcldec.Spec, ctx *hcl.EvalContext, dir string) (*modules.Config, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "no block in " + filename}}
	}
	cfg, ds := decode(body.Blocks[0], spec, ctx, dir)
	return cfg, append(diags, ds...)
}

// Decoded is one block of a file decoded by DecodeAll.
type Decoded struct {
	Kind   string
	Config *modules.Config
}

// DecodeAll decodes every block of an HCL file in order, each with the spec
// specOf returns for its type (nil: an "unknown block type" error).
func DecodeAll(filename string, src []byte, specOf func(kind string) hcldec.Spec, ctx *hcl.EvalContext, dir string) ([]Decoded, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []Decoded
	for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
		spec := specOf(blk.Type)
		if spec == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown block type " + blk.Type, Subject: blk.DefRange().Ptr()})
			continue
		}
		cfg, ds := decode(blk, spec, ctx, dir)
		diags = append(diags, ds...)
		out = append(out, Decoded{Kind: blk.Type, Config: cfg})
	}
	return out, diags
}

func decode(blk *hclsyntax.Block, spec hcldec.Spec, ctx *hcl.EvalContext, dir string) (*modules.Config, hcl.Diagnostics) {
	val, diags := hcldec.Decode(blk.Body, spec, ctx)
	cfg := &modules.Config{Value: val, Ranges: map[string]hcl.Range{}, DeclRange: blk.DefRange(), Dir: dir}
	for name, a := range blk.Body.Attributes {
		cfg.Ranges[name] = a.Expr.Range()
	}
	for _, b := range blk.Body.Blocks {
		if _, ok := cfg.Ranges[b.Type]; !ok {
			cfg.Ranges[b.Type] = b.DefRange()
		}
	}
	return cfg, diags
}

// DecodeFile is DecodeBlock on a file; dir is the file's directory.
func DecodeFile(path string, spec hcldec.Spec, ctx *hcl.EvalContext) (*modules.Config, hcl.Diagnostics, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, diags := DecodeBlock(path, src, spec, ctx, filepath.Dir(path))
	return cfg, diags, nil
}

// WantError is an expected diagnostic: a `# ERROR: summary` comment on a line.
type WantError struct {
	Line    int
	Summary string
}

// ErrorComments returns the `# ERROR: summary` comments of src, by line
// (langtest.Markers, the one parser of them).
func ErrorComments(src []byte) []WantError {
	var out []WantError
	for _, m := range langtest.Markers("", src) {
		out = append(out, WantError{Line: m.Line, Summary: m.Summary})
	}
	return out
}

// MatchErrors compares diagnostics with the wanted ones: every wanted error
// must appear on its line (summary as a substring), and no other error may
// appear. It returns the mismatches in words.
func MatchErrors(got hcl.Diagnostics, want []WantError) []string {
	var problems []string
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, d := range got {
			if used[i] || d.Severity != hcl.DiagError || d.Subject == nil {
				continue
			}
			if d.Subject.Start.Line == w.Line && strings.Contains(d.Summary, w.Summary) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			problems = append(problems, "missing on line "+strconv.Itoa(w.Line)+": "+w.Summary)
		}
	}
	for i, d := range got {
		if !used[i] && d.Severity == hcl.DiagError {
			problems = append(problems, "unexpected: "+d.Error())
		}
	}
	return problems
}
