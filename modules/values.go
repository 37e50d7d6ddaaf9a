package modules

import (
	"fmt"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// RefName returns the "name" attribute of a reference object such as
// host.web, database.prod or backup.standby ("" when null or unknown).
func RefName(v cty.Value) string {
	return GetString(v, "name")
}

// GetString returns obj.attr as a string; "" when absent, null or unknown.
func GetString(obj cty.Value, attr string) string {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Get returns obj.attr unmarked, or cty.NilVal-safe null when absent.
func Get(obj cty.Value, attr string) cty.Value {
	if obj.IsNull() || !obj.IsKnown() {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	obj, _ = obj.Unmark()
	if !obj.Type().IsObjectType() || !obj.Type().HasAttribute(attr) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	v, _ := obj.GetAttr(attr).Unmark()
	return v
}

// GetBool returns obj.attr as a bool, def when absent, null or unknown.
func GetBool(obj cty.Value, attr string, def bool) bool {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Bool {
		return def
	}
	return v.True()
}

// GetInt returns obj.attr as an int, def when absent, null or unknown.
func GetInt(obj cty.Value, attr string, def int) int {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		return def
	}
	i, _ := v.AsBigFloat().Int64()
	return int(i)
}

// GetDuration parses obj.attr ("90s", "5m", "72h"); def when absent.
func GetDuration(obj cty.Value, attr string, def time.Duration) (time.Duration, error) {
	s := GetString(obj, attr)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (like 30s, 5m, 72h)", attr, s)
	}
	return d, nil
}

// GetStrings returns obj.attr as a list of strings (list, set or tuple).
func GetStrings(obj cty.Value, attr string) []string {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		e, _ = e.Unmark()
		if e.IsKnown() && !e.IsNull() && e.Type() == cty.String {
			out = append(out, e.AsString())
		}
	}
	return out
}

// GetRefNames returns the names of a list of reference objects (hosts = [host.a, host.b]).
func GetRefNames(obj cty.Value, attr string) []string {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if n := RefName(e); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// GetStringMap returns obj.attr as map[string]string (map or object of strings).
func GetStringMap(obj cty.Value, attr string) map[string]string {
	v := Get(obj, attr)
	if v.IsNull() || !v.IsKnown() || !v.CanIterateElements() {
		return nil
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		e, _ = e.Unmark()
		if k.Type() == cty.String && e.IsKnown() && !e.IsNull() && e.Type() == cty.String {
			out[k.AsString()] = e.AsString()
		}
	}
	return out
}
