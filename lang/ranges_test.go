package lang_test

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
)

var nestedSpec = hcldec.ObjectSpec{
	"duration": &hcldec.AttrSpec{Name: "duration", Type: cty.String},
	"log": &hcldec.BlockListSpec{TypeName: "log", Nested: hcldec.ObjectSpec{
		"path":    &hcldec.AttrSpec{Name: "path", Type: cty.String},
		"pattern": &hcldec.AttrSpec{Name: "pattern", Type: cty.String},
		"match": &hcldec.BlockListSpec{TypeName: "match", Nested: hcldec.ObjectSpec{
			"re": &hcldec.AttrSpec{Name: "re", Type: cty.String},
		}},
	}},
}

// Attributes of nested blocks get BLOCK.N.ATTR ranges (N counts blocks of
// that type from 0), blocks BLOCK.N, at any depth; BLOCK is the first block.
func TestBodyRanges_nestedBlocks(t *testing.T) {
	src := `duration = "1h"
log {
  path = "a"
}
log {
  path    = "b"
  pattern = "ERROR("
  match {
    re = "x"
  }
  match {
    re = "y"
  }
}
`
	want := map[string]int{ // key -> line
		"duration": 1, "log": 2, "log.0": 2, "log.0.path": 3, "log.1": 5, "log.1.path": 6, "log.1.pattern": 7,
		"log.1.match": 8, "log.1.match.0": 8, "log.1.match.0.re": 9, "log.1.match.1": 11, "log.1.match.1.re": 12,
	}
	f, diags := hclsyntax.ParseConfig([]byte(src), "x.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	_, ranges, diags := lang.DecodeBody(f.Body, nestedSpec, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	check(t, "native", ranges, want)

	jsrc := `{"duration": "1h", "log": [{"path": "a"}, {"path": "b", "pattern": "ERROR(", "match": [{"re": "x"}, {"re": "y"}]}]}`
	jf, diags := json.Parse([]byte(jsrc), "x.json")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// modules declare bodies as *ObjectSpec too (observe)
	jr := lang.BodyRanges(jf.Body, &nestedSpec)
	for _, k := range []string{"duration", "log", "log.0.path", "log.1.path", "log.1.pattern", "log.1.match.1.re"} {
		if _, ok := jr[k]; !ok {
			t.Errorf("json: no range for %s (have %v)", k, keys(jr))
		}
	}
	if jr["log.1.pattern"].Start.Column <= jr["log.1.path"].Start.Column {
		t.Errorf("json: log.1.pattern at %s, log.1.path at %s", jr["log.1.pattern"], jr["log.1.path"])
	}
}

func check(t *testing.T, what string, ranges map[string]hcl.Range, want map[string]int) {
	t.Helper()
	for k, line := range want {
		r, ok := ranges[k]
		if !ok {
			t.Errorf("%s: no range for %s (have %v)", what, k, keys(ranges))
			continue
		}
		if r.Start.Line != line {
			t.Errorf("%s: %s at line %d, want %d", what, k, r.Start.Line, line)
		}
	}
}

func keys(m map[string]hcl.Range) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
