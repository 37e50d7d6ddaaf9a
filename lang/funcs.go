package lang

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions of the language for a configuration in
// dir. With apply false, impure functions (timestamp) return unknown values
// marked AfterMark("apply"), so validate and plan stay reproducible.
func functions(dir string, env func(string) (string, bool), apply bool) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"chomp":           stdlib.ChompFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        coalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"csvdecode":       stdlib.CSVDecodeFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"int":             stdlib.IntFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"log":             stdlib.LogFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"range":           stdlib.RangeFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"regex_replace":   stdlib.RegexReplaceFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"signum":          stdlib.SignumFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"strlen":          stdlib.StrlenFunc,
		"strrev":          stdlib.ReverseFunc,
		"substr":          stdlib.SubstrFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"title":           stdlib.TitleFunc,
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		"tostring":        stdlib.MakeToFunc(cty.String),
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"tobool":          stdlib.MakeToFunc(cty.Bool),
		"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try":             tryfunc.TryFunc,
		"can":             tryfunc.CanFunc,
		"sha256":          sha256Func,
		"shellquote":      shellQuoteFunc,
		"base64encode":    base64EncodeFunc,
		"base64decode":    base64DecodeFunc,
		"env":             envFunc(env),
		"file":            fileFunc(dir),
		"filesha256":      fileSHA256Func(dir),
		"timestamp":       timestampFunc(apply),
	}
	// templatefile sees every function but itself: no recursion.
	inner := make(map[string]function.Function, len(fs))
	for k, v := range fs {
		inner[k] = v
	}
	fs["templatefile"] = templateFileFunc(dir, inner)
	return fs
}

// PureFunctions returns the language's functions whose results depend only
// on their arguments and the configuration's files, for modules that
// evaluate expressions of their own (template): every function but
// timestamp, env and templatefile (no recursion, as in templatefile).
// Built once per configuration; callers must not change the map.
func (c *Config) PureFunctions() map[string]function.Function {
	if c.scope == nil {
		return pureFunctions(c.Dir)
	}
	c.scope.pureOnce.Do(func() { c.scope.pure = pureFunctions(c.Dir) })
	return c.scope.pure
}

func pureFunctions(dir string) map[string]function.Function {
	fs := functions(dir, func(string) (string, bool) { return "", false }, false)
	delete(fs, "timestamp")
	delete(fs, "env")
	delete(fs, "templatefile")
	return fs
}

// lengthFunc is stdlib's length that also counts the characters of a
// string and the attributes of an object, as Terraform's does.
var lengthFunc = function.New(&function.Spec{
	Description: "the number of elements of a collection or characters of a string",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowDynamicType: true}},
	Type: func(args []cty.Value) (cty.Type, error) {
		return cty.Number, nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		switch ty := args[0].Type(); {
		case ty == cty.String:
			return stdlib.Strlen(args[0])
		case ty.IsObjectType():
			return cty.NumberIntVal(int64(len(ty.AttributeTypes()))), nil
		}
		return stdlib.Length(args[0])
	},
})

// coalesceFunc returns its first argument that is neither null nor an
// empty string, as Terraform's coalesce does (cty's skips only nulls).
var coalesceFunc = function.New(&function.Spec{
	Description: "the first argument that is not null or an empty string",
	VarParam:    &function.Parameter{Name: "vals", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowDynamicType: true, AllowNull: true},
	Type: func(args []cty.Value) (cty.Type, error) {
		return stdlib.CoalesceFunc.ReturnType(argTypes(args))
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		var keep []cty.Value
		for _, a := range args {
			if a.IsKnown() && !a.IsNull() && a.Type() == cty.String && a.AsString() == "" {
				continue
			}
			keep = append(keep, a)
		}
		if len(keep) == 0 {
			return cty.NilVal, fmt.Errorf("no non-null, non-empty argument")
		}
		return stdlib.Coalesce(keep...)
	},
})

func argTypes(args []cty.Value) []cty.Type {
	out := make([]cty.Type, len(args))
	for i, a := range args {
		out[i] = a.Type()
	}
	return out
}

var sha256Func = function.New(&function.Spec{
	Description: "hex sha256 of a string",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		s := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(s[:])), nil
	},
})

// shellQuoteFunc quotes a string as one word for a POSIX shell (single
// quotes; a quote inside is closed, escaped and reopened), so commands can interpolate values safely:
// command = "app --token ${shellquote(var.token)}".
var shellQuoteFunc = function.New(&function.Spec{
	Description: "the string quoted as one word for a POSIX shell",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal("'" + strings.ReplaceAll(args[0].AsString(), "'", `'\''`) + "'"), nil
	},
})

var base64EncodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "not valid base64: %s", err)
		}
		if !utf8.Valid(b) {
			return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "the decoded bytes are not valid UTF-8")
		}
		return cty.StringVal(string(b)), nil
	},
})

func envFunc(env func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "the value of an environment variable, \"\" when unset",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, _ := env(args[0].AsString())
			return cty.StringVal(v), nil
		},
	})
}

// readConfigFile reads path relative to the configuration directory.
func readConfigFile(dir, path string) ([]byte, string, error) {
	p := path
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, p, fmt.Errorf("no file %q (relative paths start at the configuration directory %s)", path, dir)
		}
		return nil, p, fmt.Errorf("cannot read %q: %v", path, err)
	}
	return b, p, nil
}

func fileFunc(dir string) function.Function {
	return readFunc(dir, "the contents of a UTF-8 file, relative to the configuration directory", func(path string, b []byte) (cty.Value, error) {
		if !utf8.Valid(b) {
			return cty.NilVal, fmt.Errorf("%q is not UTF-8 text; use filesha256 or an upload action for binary files", path)
		}
		return cty.StringVal(string(b)), nil
	})
}

func fileSHA256Func(dir string) function.Function {
	return readFunc(dir, "hex sha256 of a file, relative to the configuration directory", func(_ string, b []byte) (cty.Value, error) {
		s := sha256.Sum256(b)
		return cty.StringVal(hex.EncodeToString(s[:])), nil
	})
}

// readFunc is a function of one path argument that reads that file.
func readFunc(dir, desc string, f func(path string, b []byte) (cty.Value, error)) function.Function {
	return function.New(&function.Spec{
		Description: desc,
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, _, err := readConfigFile(dir, args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(0, err)
			}
			v, err := f(args[0].AsString(), b)
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(0, err)
			}
			return v, nil
		},
	})
}

func timestampFunc(apply bool) function.Function {
	return function.New(&function.Spec{
		Description: "the current time (RFC 3339, UTC); unknown until apply",
		Params:      []function.Parameter{},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(_ []cty.Value, _ cty.Type) (cty.Value, error) {
			if !apply {
				return cty.UnknownVal(cty.String).Mark(AfterMark("apply")), nil
			}
			return cty.StringVal(time.Now().UTC().Format(time.RFC3339)), nil
		},
	})
}

func templateFileFunc(dir string, funcs map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Description: "renders a file in HCL template syntax with the given variables",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			vars := args[1]
			if !vars.IsWhollyKnown() {
				return cty.UnknownVal(cty.String), nil
			}
			if vars.IsNull() || !(vars.Type().IsObjectType() || vars.Type().IsMapType()) {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(1, "vars must be an object or a map, like { version = var.version }")
			}
			b, p, err := readConfigFile(dir, args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(0, err)
			}
			if ds := diags.Nesting(b, p, true); ds != nil {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "template %s: %s", args[0].AsString(), ds.Error())
			}
			tmpl, diags := hclsyntax.ParseTemplate(b, p, hcl.Pos{Line: 1, Column: 1, Byte: 0})
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "template %s: %s", args[0].AsString(), diags.Error())
			}
			m := map[string]cty.Value{}
			for it := vars.ElementIterator(); it.Next(); {
				k, v := it.Element()
				if !hclsyntax.ValidIdentifier(k.AsString()) {
					return cty.UnknownVal(cty.String), function.NewArgErrorf(1, "vars: %q is not a valid name", k.AsString())
				}
				m[k.AsString()] = v
			}
			for _, tr := range tmpl.Variables() {
				if _, ok := m[tr.RootName()]; !ok {
					return cty.UnknownVal(cty.String), function.NewArgErrorf(1, "template %s uses %q, which vars does not set", args[0].AsString(), tr.RootName())
				}
			}
			out, diags := tmpl.Value(&hcl.EvalContext{Variables: m, Functions: funcs})
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "template %s: %s", args[0].AsString(), diags.Error())
			}
			if !out.IsKnown() {
				return cty.UnknownVal(cty.String), nil
			}
			if out.IsNull() {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "template %s renders to null", args[0].AsString())
			}
			out, err = convertString(out)
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "template %s: %s", args[0].AsString(), err)
			}
			return out, nil
		},
	})
}
