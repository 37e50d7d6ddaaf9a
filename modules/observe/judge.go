package observe

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// state is a window's resumable state, checkpointed after every interval.
// Its size depends on hosts, logs and checks, never on the window's length.
type state struct {
	Samples int `json:"samples"`
	// TS is when the state was checkpointed (the end of the last round).
	TS time.Time `json:"ts"`
	// Cursors: "HOST|N" (N: log block position) -> where to read next.
	Cursors map[string]logCursor `json:"cursors,omitempty"`
	// Matches: "HOST|N" -> matching lines since the window started.
	Matches map[string]int `json:"matches,omitempty"`
	// Lines: "HOST|LOG" -> the last matching lines (trimmed).
	Lines map[string][]string `json:"lines,omitempty"`
	// BreachStart: "HOST|BOUND" -> when the value went above the bound.
	BreachStart map[string]time.Time `json:"breach_start,omitempty"`
	// CheckFails: check -> consecutive failed intervals.
	CheckFails map[string]int `json:"check_fails,omitempty"`
	// Unreachable: host -> consecutive intervals it could not be sampled.
	Unreachable map[string]int `json:"unreachable,omitempty"`
	// Baselines: metric -> series -> the query's mean over the baseline
	// period before the window (measured once; absent until it could be).
	Baselines map[string]map[string]float64 `json:"baselines,omitempty"`
	// Metrics: each metric's outcome in the last interval, in one short line
	// ("2 series, highest 0.05; over: max", "no data: ..."), so that the
	// journal (where this state is checkpointed) shows every interval's.
	Metrics map[string]string `json:"metrics,omitempty"`
}

func newState() *state {
	return &state{
		Cursors: map[string]logCursor{}, Matches: map[string]int{}, Lines: map[string][]string{},
		BreachStart: map[string]time.Time{}, CheckFails: map[string]int{}, Unreachable: map[string]int{},
		Baselines: map[string]map[string]float64{}, Metrics: map[string]string{},
	}
}

// logName is how a log block is named in records and messages.
func (s *settings) logName(i int) string {
	l := s.Logs[i]
	for j, o := range s.Logs {
		if j != i && o.Path == l.Path {
			return fmt.Sprintf("%s#%d", l.Path, l.Index)
		}
	}
	return l.Path
}

// bounds names the window's limits as Record.Over names the metrics.
func (s *settings) bounds() map[string]float64 {
	out := map[string]float64{}
	for name, v := range map[string]*float64{"cpu": s.MaxCPU, "memory": s.MaxMem, "disk": s.MaxDisk, "load": s.MaxLoad} {
		if v != nil {
			out[name] = *v
		}
	}
	for i, l := range s.Logs {
		out["log "+s.logName(i)] = float64(l.MaxMatches)
	}
	return out
}

// evaluate judges one sample record against the bounds, updating the
// breach timers and kept log lines in st, and sets rec.Over. It returns why
// the window fails, if it does. The live window and the judgement of a window
// whose deadline passed while upgrader was down both use it, so they agree.
func (s *settings) evaluate(st *state, rec *Record) []string {
	if rec.Type == RecordMetric {
		return s.evaluateMetric(st, rec)
	}
	var fails []string
	host := rec.Host
	who := fmt.Sprintf("host %q", host)
	at := rec.TS

	bound := func(name, attr, unit string, v *float64, max *float64) {
		if v == nil || max == nil {
			return
		}
		key := host + "|" + name
		if *v <= *max {
			delete(st.BreachStart, key)
			return
		}
		rec.Over = append(rec.Over, name)
		since, ok := st.BreachStart[key]
		if !ok {
			since = at
			st.BreachStart[key] = at
		}
		if at.Sub(since) < s.BreachFor {
			return
		}
		msg := fmt.Sprintf("%s: %s %s%s is above %s %s%s", who, name, fmtNum(*v), unit, attr, fmtNum(*max), unit)
		if s.BreachFor > 0 {
			msg += fmt.Sprintf(" since %s (for %s, breach_for %s)", since.UTC().Format(time.RFC3339), at.Sub(since).Round(time.Second), s.BreachFor)
		}
		fails = append(fails, msg)
	}
	bound("cpu", "max_cpu_percent", "%", rec.CPU, s.MaxCPU)
	bound("memory", "max_memory_percent", "%", rec.Mem, s.MaxMem)
	for _, m := range slices.Sorted(maps.Keys(rec.Disk)) {
		v := rec.Disk[m]
		bound("disk "+m, "max_disk_percent", "%", &v, s.MaxDisk)
	}
	bound("load", "max_load", "", rec.Load, s.MaxLoad)

	for i, l := range s.Logs {
		if !l.onHost(host) || host == "" {
			continue
		}
		name := s.logName(i)
		key := host + "|" + name
		if add := rec.LogLines[name]; len(add) > 0 {
			kept := append(st.Lines[key], add...)
			if len(kept) > keepLines {
				kept = append([]string(nil), kept[len(kept)-keepLines:]...)
			}
			st.Lines[key] = kept
		}
		n, ok := rec.LogMatches[name]
		if !ok || n <= l.MaxMatches {
			continue
		}
		rec.Over = append(rec.Over, "log "+name)
		var b strings.Builder
		fmt.Fprintf(&b, "log %s on %s: %d line(s) match %s (max_matches %d)", l.Path, who, n, l.Shown, l.MaxMatches)
		if lines := st.Lines[key]; len(lines) > 0 {
			if n > len(lines) {
				fmt.Fprintf(&b, "; the last %d:", len(lines))
			} else {
				b.WriteString(":")
			}
			for _, line := range lines {
				b.WriteString("\n    " + line)
			}
		}
		fails = append(fails, b.String())
	}

	if rec.Unreachable > 0 {
		switch {
		case s.UnreachableFails:
			fails = append(fails, fmt.Sprintf("%s could not be sampled (unreachable_fails = true): %s", who, rec.Error))
		case rec.Unreachable >= s.MaxCheckFailures:
			fails = append(fails, fmt.Sprintf("%s could not be sampled %d interval(s) in a row (max_check_failures %d): %s", who, rec.Unreachable, s.MaxCheckFailures, rec.Error))
		}
	}
	// Checks are the same in every host's record of an interval: judge them once.
	if host == "" || (len(s.Hosts) > 0 && host == s.Hosts[0]) {
		for _, c := range slices.Sorted(maps.Keys(rec.CheckFailures)) {
			if n := rec.CheckFailures[c]; n >= s.MaxCheckFailures {
				msg := fmt.Sprintf("check %q failed %d interval(s) in a row (max_check_failures %d)", c, n, s.MaxCheckFailures)
				if e := rec.CheckErrors[c]; e != "" {
					msg += ": " + e
				}
				fails = append(fails, msg)
			}
		}
	}
	sort.Strings(rec.Over)
	return fails
}

func fmtNum(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
