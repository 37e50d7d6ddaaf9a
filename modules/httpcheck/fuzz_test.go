package httpcheck

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// FuzzCheckJSON feeds arbitrary response bodies and paths to the JSON
// comparison: a server's answer must never panic upgrader.
func FuzzCheckJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[{"c":1}]}}`), "a.b.0.c", "1")
	f.Add([]byte(`[1,2,3]`), "5", "x")
	f.Add([]byte(`{"a":null}`), "a.b", "")
	f.Add([]byte(`1e999999`), "", "1")
	f.Fuzz(func(t *testing.T, body []byte, path, want string) {
		exp := cty.MapVal(map[string]cty.Value{path: cty.StringVal(want)})
		_ = checkJSON(exp, body)
		exp = cty.ObjectVal(map[string]cty.Value{path: cty.ObjectVal(map[string]cty.Value{"x": cty.NumberIntVal(1), "y": cty.ListVal([]cty.Value{cty.True})})})
		_ = checkJSON(exp, body)
	})
}
