package lang

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// After marks a value known only after the node Node has run (at plan time
// node outputs are unknown). Views print it as "(known after NODE)". The
// pseudo-node "apply" marks impure values (timestamp(), run.id at plan).
type After struct{ Node string }

// AfterMark is the mark for a value known only after node addr has run.
func AfterMark(addr string) After { return After{Node: addr} }

type sensitiveMark string

// SensitiveMark marks the values of sensitive variables and everything
// computed from them. Views print "(sensitive)" instead of the value.
const SensitiveMark = sensitiveMark("sensitive")

// IsSensitive reports whether v or anything inside it is sensitive.
func IsSensitive(v cty.Value) bool {
	if !v.ContainsMarked() {
		return false
	}
	_, marks := v.UnmarkDeep()
	_, ok := marks[SensitiveMark]
	return ok
}

// AfterNodes returns, sorted, the nodes that v (or anything inside it)
// waits for: the Node of every After mark.
func AfterNodes(v cty.Value) []string {
	if !v.ContainsMarked() {
		return nil
	}
	_, marks := v.UnmarkDeep()
	var out []string
	for m := range marks {
		if a, ok := m.(After); ok {
			out = append(out, a.Node)
		}
	}
	sort.Strings(out)
	return out
}

// Redact replaces every sensitive part of v by the string "(sensitive)"
// and drops all other marks, so the result can be printed or journaled.
func Redact(v cty.Value) cty.Value {
	if !v.ContainsMarked() {
		return v
	}
	if v.HasMark(SensitiveMark) {
		return cty.StringVal("(sensitive)")
	}
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() {
		return v
	}
	ty := v.Type()
	switch {
	case ty.IsObjectType():
		attrs := map[string]cty.Value{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			attrs[k.AsString()] = Redact(e)
		}
		return cty.ObjectVal(attrs)
	case ty.IsMapType():
		m := map[string]cty.Value{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			m[k.AsString()] = Redact(e)
		}
		// Redacted elements may no longer share one type: an object keeps them.
		return cty.ObjectVal(m)
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		var elems []cty.Value
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			elems = append(elems, Redact(e))
		}
		if len(elems) == 0 {
			return cty.EmptyTupleVal
		}
		return cty.TupleVal(elems)
	}
	v, _ = v.UnmarkDeep()
	return v
}

// afterText says in words what an unknown value waits for.
func afterText(nodes []string) string {
	var ns []string
	apply := false
	for _, n := range nodes {
		if n == "apply" {
			apply = true
		} else {
			ns = append(ns, n)
		}
	}
	switch {
	case len(ns) > 0 && apply:
		return "it is known only after " + strings.Join(ns, ", ") + " has run, and at apply time"
	case len(ns) > 0:
		return "it is known only after " + strings.Join(ns, ", ") + " has run"
	default:
		return "it is known only at apply time (timestamp(), run.id, run.started_at)"
	}
}

// SensitiveStrings returns the text of every sensitive part of v: each
// known string, number or bool that is marked sensitive or lies inside a
// sensitive collection (a field of a sensitive object). The executor gives
// them to modules.Secrets, which scrubs them from text.
func SensitiveStrings(v cty.Value) []string {
	if !v.ContainsMarked() {
		return nil
	}
	var out []string
	_ = cty.Walk(v, func(_ cty.Path, x cty.Value) (bool, error) {
		if x.HasMark(SensitiveMark) {
			out = leafStrings(x, out)
			return false, nil
		}
		return true, nil
	})
	return out
}

// leafStrings appends the text of every known primitive inside v.
func leafStrings(v cty.Value, out []string) []string {
	v, _ = v.UnmarkDeep()
	_ = cty.Walk(v, func(_ cty.Path, x cty.Value) (bool, error) {
		if !x.IsKnown() || x.IsNull() {
			return false, nil
		}
		switch x.Type() {
		case cty.String:
			out = append(out, x.AsString())
		case cty.Number:
			out = append(out, x.AsBigFloat().Text('f', -1))
		}
		return true, nil
	})
	return out
}

// SensitiveDigests returns, for each sensitive variable with a known value,
// the hex HMAC-SHA256 of its value under key: enough to tell that a value
// changed (a saved plan gone stale, a resume given another value) without
// storing anything that lets a reader of plans or journals test guesses
// (the key stays in the state directory).
func (c *Config) SensitiveDigests(key []byte) map[string]string {
	out := map[string]string{}
	for name, v := range c.Variables {
		if !v.Sensitive || !v.Value.IsWhollyKnown() {
			continue
		}
		raw, _ := v.Value.UnmarkDeep()
		if raw.IsNull() {
			continue
		}
		js, err := ctyjson.Marshal(raw, raw.Type())
		if err != nil {
			continue
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s\x00%s", name, js)
		out[name] = hex.EncodeToString(m.Sum(nil))
	}
	return out
}

// SensitiveParts returns the text of every sensitive value computed inside
// body's expressions, not only their results: in
// "app --key ${base64encode(var.token)}" the whole command is one sensitive
// string, but the base64 text is a secret of its own that output can echo.
// Each sub-expression that yields a sensitive value is evaluated in ctx
// (callers do this only for bodies whose value is sensitive).
func SensitiveParts(body hcl.Body, ctx *hcl.EvalContext) []string {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []string
	_ = hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		e, ok := n.(hclsyntax.Expression)
		if !ok {
			return nil
		}
		switch e.(type) {
		case *hclsyntax.LiteralValueExpr, *hclsyntax.ObjectConsKeyExpr:
			return nil // literals hold no secret
		}
		if v, ds := e.Value(ctx); !ds.HasErrors() && IsSensitive(v) {
			out = append(out, SensitiveStrings(v)...)
		}
		return nil
	})
	return out
}
