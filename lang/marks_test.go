package lang_test

import (
	"reflect"
	"testing"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/zclconf/go-cty/cty"
)

func TestMarks_redactAndFind(t *testing.T) {
	secret := cty.StringVal("hunter2").Mark(lang.SensitiveMark)
	later := cty.UnknownVal(cty.Bool).Mark(lang.AfterMark("step.install"))
	v := cty.ObjectVal(map[string]cty.Value{
		"user":  cty.StringVal("app"),
		"pass":  secret,
		"list":  cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b").Mark(lang.SensitiveMark)}),
		"ready": later,
		"env":   cty.MapVal(map[string]cty.Value{"TOKEN": secret}),
	})
	if !lang.IsSensitive(v) || lang.IsSensitive(cty.StringVal("x")) {
		t.Errorf("IsSensitive wrong")
	}
	if got := lang.AfterNodes(v); !reflect.DeepEqual(got, []string{"step.install"}) {
		t.Errorf("AfterNodes = %v", got)
	}
	r := lang.Redact(v)
	if r.ContainsMarked() {
		t.Fatalf("redacted value still marked: %#v", r)
	}
	want := cty.ObjectVal(map[string]cty.Value{
		"user":  cty.StringVal("app"),
		"pass":  cty.StringVal("(sensitive)"),
		"list":  cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("(sensitive)")}),
		"ready": cty.UnknownVal(cty.Bool),
		"env":   cty.ObjectVal(map[string]cty.Value{"TOKEN": cty.StringVal("(sensitive)")}),
	})
	if !r.RawEquals(want) {
		t.Errorf("Redact = %#v\nwant %#v", r, want)
	}
	if got := lang.Redact(secret); got.AsString() != "(sensitive)" {
		t.Errorf("Redact(secret) = %#v", got)
	}
}
