package observe

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// Defaults of the optional arguments.
const (
	defaultInterval         = time.Minute
	defaultMaxCheckFailures = 1
)

func (*Observe) Spec() hcldec.Spec {
	num := func(n string) hcldec.Spec { return &hcldec.AttrSpec{Name: n, Type: cty.Number} }
	str := func(n string) hcldec.Spec { return &hcldec.AttrSpec{Name: n, Type: cty.String} }
	return &hcldec.ObjectSpec{
		"duration": &hcldec.AttrSpec{Name: "duration", Type: cty.String, Required: true},
		"interval": str("interval"),
		// References (host.x, check.y) are objects whose attribute types differ
		// per kind, so the lists are dynamic and checked in settings().
		"hosts":              &hcldec.AttrSpec{Name: "hosts", Type: cty.DynamicPseudoType},
		"max_cpu_percent":    num("max_cpu_percent"),
		"max_memory_percent": num("max_memory_percent"),
		"max_disk_percent":   num("max_disk_percent"),
		"max_load":           num("max_load"),
		"disk_paths":         &hcldec.AttrSpec{Name: "disk_paths", Type: cty.List(cty.String)},
		"breach_for":         str("breach_for"),
		"checks":             &hcldec.AttrSpec{Name: "checks", Type: cty.DynamicPseudoType},
		"max_check_failures": num("max_check_failures"),
		"unreachable_fails":  &hcldec.AttrSpec{Name: "unreachable_fails", Type: cty.Bool},
		// A tuple, not a list: log blocks differ in type when only some set host.
		"log": &hcldec.BlockTupleSpec{TypeName: "log", Nested: &hcldec.ObjectSpec{
			"host":        &hcldec.AttrSpec{Name: "host", Type: cty.DynamicPseudoType},
			"path":        &hcldec.AttrSpec{Name: "path", Type: cty.String, Required: true},
			"pattern":     &hcldec.AttrSpec{Name: "pattern", Type: cty.String, Required: true},
			"max_matches": num("max_matches"),
		}},
		"metric": metricBlockSpec(),
	}
}

// settings is an observe block, checked and with defaults applied.
type settings struct {
	Duration, Interval, BreachFor time.Duration

	Hosts []string
	// Bounds; nil when not set (not watched).
	MaxCPU, MaxMem, MaxDisk, MaxLoad *float64
	DiskPaths                        []string // disk_paths (default "/") plus the log files' paths
	Logs                             []logSpec
	Checks                           []string
	MaxCheckFailures                 int
	UnreachableFails                 bool
	Metrics                          []metricSpec
}

type logSpec struct {
	Index      int    // position among the log blocks
	Host       string // "" = every host of the window
	Path       string
	Pattern    string
	Shown      string // the pattern as messages show it: "(sensitive)" when it is
	Re         *regexp.Regexp
	MaxMatches int
}

// onHost reports whether the log block watches host.
func (l *logSpec) onHost(h string) bool { return l.Host == "" || l.Host == h }

// settings decodes cfg. With partial = true (validate time) unknown values
// are skipped rather than reported; the returned settings are then incomplete.
func parseSettings(cfg *modules.Config, partial bool) (*settings, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	v := cfg.Value
	at := func(attr, summary, detail string) {
		ds = append(ds, diags.At(rangeOf(cfg, attr), summary, detail))
	}
	s := &settings{MaxCheckFailures: defaultMaxCheckFailures}

	dur := func(attr string, def time.Duration, positive bool) time.Duration {
		raw := modules.Get(v, attr)
		if !raw.IsKnown() && partial {
			return def
		}
		d, err := modules.GetDuration(v, attr, def)
		if err != nil {
			at(attr, "Invalid duration", err.Error())
			return def
		}
		if d < 0 || (positive && d == 0) {
			at(attr, "Invalid duration", fmt.Sprintf("%s must be greater than zero, got %s.", attr, d))
			return def
		}
		return d
	}
	s.Duration = dur("duration", 0, true)
	s.Interval = dur("interval", defaultInterval, true)
	s.BreachFor = dur("breach_for", 0, false)
	if s.Duration > 0 && s.Interval > s.Duration {
		at("interval", "Interval longer than the window",
			fmt.Sprintf("interval %s is longer than duration %s: the window would end before its first sample.", s.Interval, s.Duration))
	}

	bound := func(attr string, max float64) *float64 {
		f, ok, known := getFloat(v, attr)
		if !ok || !known {
			return nil
		}
		if f < 0 || (max > 0 && f > max) {
			if max > 0 {
				at(attr, "Bound out of range", fmt.Sprintf("%s must be between 0 and %g, got %g.", attr, max, f))
			} else {
				at(attr, "Bound out of range", fmt.Sprintf("%s must not be negative, got %g.", attr, f))
			}
			return nil
		}
		return &f
	}
	s.MaxCPU = bound("max_cpu_percent", 100)
	s.MaxMem = bound("max_memory_percent", 100)
	s.MaxDisk = bound("max_disk_percent", 100)
	s.MaxLoad = bound("max_load", 0)

	s.Hosts = refNames(v, "hosts", "host", partial, at)
	s.Checks = refNames(v, "checks", "check", partial, at)
	if dup := firstDup(s.Hosts); dup != "" {
		at("hosts", "Duplicate host", fmt.Sprintf("host %q is listed twice in hosts.", dup))
	}

	if f, ok, known := getFloat(v, "max_check_failures"); ok && known {
		if f < 1 || f != float64(int(f)) {
			at("max_check_failures", "Invalid max_check_failures",
				fmt.Sprintf("max_check_failures counts consecutive failed intervals: a whole number of at least 1, got %g.", f))
		} else {
			s.MaxCheckFailures = int(f)
		}
	}
	s.UnreachableFails = modules.GetBool(v, "unreachable_fails", false)

	s.DiskPaths = []string{"/"}
	if raw := modules.Get(v, "disk_paths"); !raw.IsNull() && raw.IsKnown() {
		s.DiskPaths = modules.GetStrings(v, "disk_paths")
		for _, p := range s.DiskPaths {
			if !path.IsAbs(p) {
				at("disk_paths", "Relative disk path", fmt.Sprintf("disk_paths must be absolute paths on the hosts, got %q.", p))
			}
		}
	}

	logs := modules.Get(v, "log")
	if !logs.IsNull() && logs.IsKnown() && logs.CanIterateElements() {
		i := 0
		for it := logs.ElementIterator(); it.Next(); i++ {
			_, lv := it.Element()
			if l, ok := parseLog(cfg, lv, i, s.Hosts, partial, at); ok {
				s.Logs = append(s.Logs, l)
			}
		}
	}
	metrics := modules.Get(v, "metric")
	if !metrics.IsNull() && metrics.IsKnown() && metrics.CanIterateElements() {
		i := 0
		seen := map[string]int{}
		for it := metrics.ElementIterator(); it.Next(); i++ {
			_, mv := it.Element()
			m, ok := parseMetric(cfg, mv, i, s.BreachFor, partial, at)
			if prev, dup := seen[m.Name]; dup && m.Name != "" {
				at(fmt.Sprintf("metric.%d", i), "Duplicate metric", fmt.Sprintf("metric %q is declared twice in this observe block (the first is metric block %d).", m.Name, prev+1))
				continue
			}
			seen[m.Name] = i
			if ok {
				s.Metrics = append(s.Metrics, m)
			}
		}
	}
	// Host bounds and logs without hosts would silently watch nothing.
	if hostsNull := modules.Get(v, "hosts").IsNull(); hostsNull || (modules.Get(v, "hosts").IsKnown() && len(s.Hosts) == 0) {
		for _, b := range []struct {
			attr string
			set  bool
		}{{"max_cpu_percent", s.MaxCPU != nil}, {"max_memory_percent", s.MaxMem != nil}, {"max_disk_percent", s.MaxDisk != nil}, {"max_load", s.MaxLoad != nil}, {"log", len(s.Logs) > 0}} {
			if b.set {
				at(b.attr, "No hosts to watch", fmt.Sprintf("%s needs hosts = [host.NAME, ...] in this observe block.", b.attr))
			}
		}
	}
	for _, l := range s.Logs {
		if !contains(s.DiskPaths, l.Path) {
			s.DiskPaths = append(s.DiskPaths, l.Path)
		}
	}
	return s, ds
}

func parseLog(cfg *modules.Config, lv cty.Value, i int, hosts []string, partial bool, at func(attr, summary, detail string)) (logSpec, bool) {
	l := logSpec{Index: i}
	key := func(attr string) string { return fmt.Sprintf("log.%d.%s", i, attr) }
	// lang gives log.N.ATTR ranges; an attribute without one (not written,
	// or another decoder) is shown at its block: the detail names the block.
	which := fmt.Sprintf("log block %d", i+1)
	if p := modules.GetString(lv, "path"); p != "" {
		which += fmt.Sprintf(" (%s)", p)
	}
	at0 := at
	at = func(attr, summary, detail string) {
		if _, precise := cfg.Ranges[attr]; !precise {
			detail = which + ": " + detail
		}
		at0(attr, summary, detail)
	}
	ok := true
	if h := modules.Get(lv, "host"); !h.IsNull() {
		if !h.IsKnown() {
			if !partial {
				at(key("host"), "Unknown log host", "the log block's host is not known at apply time.")
			}
			ok = false
		} else if l.Host = modules.RefName(h); l.Host == "" {
			at(key("host"), "Invalid log host", "host must be a host reference, like host.standby.")
			ok = false
		} else if len(hosts) > 0 && !contains(hosts, l.Host) {
			at(key("host"), "Log host not observed",
				fmt.Sprintf("host %q is not in this window's hosts (%s); add it to hosts or drop host from the log block.", l.Host, strings.Join(hosts, ", ")))
			ok = false
		}
	}
	p := modules.Get(lv, "path")
	if !p.IsKnown() {
		ok = false
	} else if l.Path = modules.GetString(lv, "path"); !path.IsAbs(l.Path) {
		at(key("path"), "Relative log path", fmt.Sprintf("path must be an absolute path on the host, got %q.", l.Path))
		ok = false
	}
	pat := modules.Get(lv, "pattern")
	if !pat.IsKnown() {
		ok = false
	} else {
		l.Pattern = modules.GetString(lv, "pattern")
		l.Shown = fmt.Sprintf("%q", l.Pattern)
		if isSensitive(lv, "pattern") {
			l.Shown = "(sensitive)"
		}
		re, err := regexp.Compile(l.Pattern)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
			if l.Shown == "(sensitive)" {
				msg = "(details hidden: the pattern is sensitive)"
			}
			at(key("pattern"), "Invalid log pattern", fmt.Sprintf("pattern %s is not a valid RE2 regular expression: %s.", l.Shown, msg))
			ok = false
		}
		l.Re = re
	}
	if f, set, known := getFloat(lv, "max_matches"); set && known {
		if f < 0 || f != float64(int(f)) {
			at(key("max_matches"), "Invalid max_matches", fmt.Sprintf("max_matches must be a whole number of at least 0, got %g.", f))
			ok = false
		}
		l.MaxMatches = int(f)
	} else if set && !known {
		ok = false
	}
	return l, ok
}

// refNames reads a list of references (hosts = [host.a], checks = [check.b]).
func refNames(v cty.Value, attr, kind string, partial bool, at func(attr, summary, detail string)) []string {
	raw := modules.Get(v, attr)
	if raw.IsNull() {
		return nil
	}
	if !raw.IsKnown() {
		if !partial {
			at(attr, "Unknown "+attr, attr+" is not known at apply time.")
		}
		return nil
	}
	if !raw.CanIterateElements() || raw.Type().IsMapType() || raw.Type().IsObjectType() {
		at(attr, "Invalid "+attr, fmt.Sprintf("%s must be a list of %s references, like [%s.a, %s.b].", attr, kind, kind, kind))
		return nil
	}
	var out []string
	for it := raw.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if !e.IsKnown() && partial {
			continue
		}
		n := modules.RefName(e)
		// Nodes carry their kind; hosts do not, but have an address.
		isKind := modules.GetString(e, "kind") == kind
		if kind == "host" {
			isKind = modules.GetString(e, "kind") == "" && !modules.Get(e, "address").IsNull()
		}
		if n == "" || !isKind {
			at(attr, "Invalid "+attr, fmt.Sprintf("every element of %s must be a %s reference, like %s.NAME.", attr, kind, kind))
			return nil
		}
		out = append(out, n)
	}
	return out
}

// getFloat returns obj.attr as a float64: set is false when absent or null,
// known is false when unknown (validate time).
func getFloat(obj cty.Value, attr string) (f float64, set, known bool) {
	v := modules.Get(obj, attr)
	if v.IsNull() {
		return 0, false, true
	}
	if !v.IsKnown() {
		return 0, true, false
	}
	if v.Type() != cty.Number {
		return 0, false, true
	}
	f, _ = v.AsBigFloat().Float64()
	return f, true, true
}

// rangeOf finds where attr was written: "log.1.pattern" falls back to its
// block ("log.1"), the first log block ("log"), then the observe block.
func rangeOf(cfg *modules.Config, attr string) hcl.Range {
	for k := attr; k != ""; {
		if r, ok := cfg.Ranges[k]; ok {
			return r
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return cfg.DeclRange
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstDup(list []string) string {
	seen := map[string]bool{}
	for _, x := range list {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}

// isSensitive reports whether obj.attr is a known value carrying a mark
// (lang marks sensitive values; modules treat any mark on a known value so).
func isSensitive(obj cty.Value, attr string) bool {
	if obj.IsNull() || !obj.IsKnown() {
		return false
	}
	obj, _ = obj.Unmark()
	if !obj.Type().IsObjectType() || !obj.Type().HasAttribute(attr) {
		return false
	}
	v := obj.GetAttr(attr)
	return v.IsKnown() && v.IsMarked()
}
