package executor

import (
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
)

// This file keeps sensitive values out of everything a run shows or
// records: events, the journal, plans, saved plans.

// redact hides the values of sensitive variables in any text shown or journaled.
func (r *run) redact(s string) string { return redactWith(r.cfg, s) }

func redactWith(cfg *lang.Config, s string) string {
	for _, v := range cfg.Variables {
		if !v.Sensitive {
			continue
		}
		val, _ := v.Value.UnmarkDeep()
		if !val.IsKnown() || val.IsNull() || val.Type() != cty.String {
			continue
		}
		if sv := val.AsString(); len(sv) >= 3 {
			s = strings.ReplaceAll(s, sv, "(sensitive)")
		}
	}
	return s
}

// publicVars renders non-sensitive variable values for the journal.
func publicVars(cfg *lang.Config) map[string]string {
	out := map[string]string{}
	for name, v := range cfg.Variables {
		if v.Sensitive || isSensitive(v.Value) {
			continue
		}
		out[name] = FormatValue(v.Value)
	}
	return out
}

// publicVarArgs drops -var arguments of sensitive variables.
func publicVarArgs(cfg *lang.Config, args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v := cfg.Variables[strings.TrimSpace(name)]; v != nil && v.Sensitive {
			continue
		}
		out = append(out, a)
	}
	return out
}
