package views

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/upgrader-dev/upgrader/executor"
)

// Plan prints a plan for a human, phase by phase, per host.
func Plan(w io.Writer, p *executor.Plan, st Style) {
	head := fmt.Sprintf("Plan for %s (configuration %.12s)", p.Dir, p.ConfigHash)
	if p.Offline {
		head += " - offline: no host was contacted"
	}
	fmt.Fprintln(w, st.Bold(head))
	if len(p.Vars) > 0 {
		names := make([]string, 0, len(p.Vars))
		for k := range p.Vars {
			names = append(names, k)
		}
		sort.Strings(names)
		var parts []string
		for _, k := range names {
			parts = append(parts, k+" = "+p.Vars[k])
		}
		fmt.Fprintln(w, st.Dim("Variables: "+strings.Join(parts, ", ")))
	}
	if len(p.Hosts) > 0 {
		fmt.Fprintln(w, st.Bold("\nConnections (settings from ssh_config)"))
		for _, h := range p.Hosts {
			line := "  " + h.Name + ": " + h.Target
			if len(h.Via) > 0 {
				line += " via " + strings.Join(h.Via, " -> ")
			}
			fmt.Fprintln(w, line)
			for _, s := range h.Settings {
				fmt.Fprintln(w, st.Dim("    "+s))
			}
		}
	}
	counts := map[string]int{}
	group := "\x00"
	for _, n := range p.Nodes {
		heading := "Phase " + n.Phase
		switch {
		case n.BeforePhases:
			heading = "Outside any phase, before the phases"
		case n.Phase == "":
			heading = "Outside any phase"
		}
		if heading != group {
			group = heading
			fmt.Fprintf(w, "\n%s\n", st.Bold(heading))
		}
		planNode(w, n, st, counts)
	}
	fmt.Fprintln(w)
	var parts []string
	for _, c := range []struct{ m, one, many string }{{"+", "to create", "to create"}, {"~", "to change", "to change"},
		{"!", "command to run", "commands to run"}, {"=", "unchanged", "unchanged"}, {"s", "skipped", "skipped"},
		{"r", "read", "reads"}, {"-", "to delete", "to delete"}} {
		switch n := counts[c.m]; {
		case n == 1:
			parts = append(parts, "1 "+c.one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, c.many))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	fmt.Fprintf(w, "%s %s.\n", st.Bold("Plan:"), strings.Join(parts, ", "))
	if len(p.Errors) > 0 {
		fmt.Fprintf(w, "%s\n", st.Red(fmt.Sprintf("%d problem(s) while probing:", len(p.Errors))))
		for _, e := range p.Errors {
			fmt.Fprintf(w, "  %s\n", st.Red(e))
		}
	}
}

func planNode(w io.Writer, n *executor.PlanNode, st Style, counts map[string]int) {
	title := st.Bold(n.Addr)
	var extra []string
	if len(n.Hosts) > 0 {
		hosts := strings.Join(elide(n.Hosts), ", ")
		if len(n.Hosts) > 8 {
			hosts = fmt.Sprintf("%d (%s)", len(n.Hosts), hosts)
		}
		extra = append(extra, "hosts: "+hosts)
	} else if len(n.HostsAfter) > 0 {
		extra = append(extra, "hosts: (known after "+strings.Join(n.HostsAfter, ", ")+")")
	}
	if n.BatchSize > 0 {
		extra = append(extra, fmt.Sprintf("batch_size %d", n.BatchSize))
	}
	if len(n.DependsOn) > 0 {
		extra = append(extra, "after "+strings.Join(n.DependsOn, ", "))
	}
	if n.Skipped {
		counts["s"]++
		fmt.Fprintf(w, "  %s %s  %s\n", st.Marker("s"), title, st.Dim(n.When))
		return
	}
	if len(extra) > 0 {
		title += "  " + st.Dim(strings.Join(extra, "; "))
	}
	fmt.Fprintf(w, "  %s\n", title)
	if n.When != "" {
		fmt.Fprintf(w, "      %s\n", st.Yellow("when: "+n.When))
	}
	if n.Message != "" {
		fmt.Fprintf(w, "      %s %s\n", st.Marker("r"), "waits for approval: "+n.Message)
		counts["r"]++
	}
	if n.Waiver {
		fmt.Fprintf(w, "      %s\n", st.Red("BACKUP WAIVED: backup_required = false ("+n.WaiverRange+"): this step runs without a backup of its hosts"))
	}
	groups := collapse(n.Actions)
	width := 0
	for _, g := range groups {
		width = max(width, len(g.label()))
	}
	for _, g := range groups {
		a := g.acts[0]
		m := a.Change
		if a.Error != "" {
			m = "?"
		} else {
			counts[m] += len(g.acts)
		}
		host := ""
		if width > 0 {
			host = fmt.Sprintf("%-*s  ", width, g.label())
		}
		idx := ""
		if a.Index >= 0 && n.Kind == "step" {
			idx = fmt.Sprintf("#%d ", a.Index+1)
		}
		fmt.Fprintf(w, "      %s %s%s%s\n", st.Marker(m), host, idx, a.Summary)
		pad := strings.Repeat(" ", 8+len(host))
		if len(g.acts) > 1 {
			fmt.Fprintf(w, "%s%s\n", pad, st.Dim("on "+hostList(g.acts)))
		}
		if a.Reason != "" {
			fmt.Fprintf(w, "%s%s\n", pad, st.Dim("("+a.Reason+")"))
		}
		if a.Error != "" {
			fmt.Fprintf(w, "%s%s\n", pad, st.Red("error: "+a.Error))
		}
		for _, wn := range a.Warnings {
			fmt.Fprintf(w, "%s%s\n", pad, st.Yellow("warning: "+wn))
		}
		if a.Detail != "" {
			for _, l := range strings.Split(strings.TrimRight(a.Detail, "\n"), "\n") {
				fmt.Fprintf(w, "%s%s\n", pad, diffLine(l, st))
			}
		}
		if a.Undo != "" && len(n.Rollback) == 0 && n.Kind == "step" {
			fmt.Fprintf(w, "%s%s\n", pad, st.Dim("undo: "+a.Undo))
		}
	}
	if len(n.Rollback) > 0 {
		fmt.Fprintf(w, "      %s\n", st.Dim("undo: the rollback block:"))
		for i, r := range n.Rollback {
			fmt.Fprintf(w, "        %s\n", st.Dim(fmt.Sprintf("%d. %s", i+1, r)))
		}
	} else if n.Kind != "step" && n.Undo != "" {
		fmt.Fprintf(w, "      %s\n", st.Dim("undo: "+n.Undo))
	}
	if n.Error != "" {
		fmt.Fprintf(w, "      %s\n", st.Red("error: "+n.Error))
	}
}

// collapseMin: this many hosts or more that plan the same action are shown
// as one line, so a plan of hundreds of hosts fits on a screen; the hosts
// that differ (outliers) keep a line each.
const collapseMin = 3

type actGroup struct{ acts []*executor.PlanAction }

func (g actGroup) label() string {
	if len(g.acts) > 1 {
		return fmt.Sprintf("%d hosts", len(g.acts))
	}
	return g.acts[0].Host
}

// collapse groups the actions that agree on everything but their host,
// in the order each group first appears; groups under collapseMin hosts
// stay one action a line.
func collapse(acts []*executor.PlanAction) []actGroup {
	type key struct {
		index                                          int
		change, summary, reason, detail, err, undo, ws string
	}
	var keys []key
	byKey := map[key][]*executor.PlanAction{}
	for _, a := range acts {
		k := key{a.Index, a.Change, a.Summary, a.Reason, a.Detail, a.Error, a.Undo, strings.Join(a.Warnings, "\n")}
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], a)
	}
	if len(keys) == len(acts) {
		return singles(acts)
	}
	var out []actGroup
	emitted := map[key]bool{}
	for _, a := range acts {
		k := key{a.Index, a.Change, a.Summary, a.Reason, a.Detail, a.Error, a.Undo, strings.Join(a.Warnings, "\n")}
		g := byKey[k]
		if len(g) < collapseMin {
			out = append(out, actGroup{acts: []*executor.PlanAction{a}})
			continue
		}
		if !emitted[k] {
			emitted[k] = true
			out = append(out, actGroup{acts: g})
		}
	}
	return out
}

func singles(acts []*executor.PlanAction) []actGroup {
	out := make([]actGroup, len(acts))
	for i, a := range acts {
		out[i] = actGroup{acts: []*executor.PlanAction{a}}
	}
	return out
}

// hostList names a group's hosts, the middle elided when there are many.
func hostList(acts []*executor.PlanAction) string {
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = a.Host
	}
	return strings.Join(elide(names), ", ")
}

// elide keeps a long list of names to its first three and last two.
func elide(names []string) []string {
	if len(names) <= 8 {
		return names
	}
	return append(append(names[:3:3], "..."), names[len(names)-2:]...)
}

func diffLine(l string, st Style) string {
	switch {
	case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		return st.Bold(l)
	case strings.HasPrefix(l, "+"):
		return st.Green(l)
	case strings.HasPrefix(l, "-"):
		return st.Red(l)
	case strings.HasPrefix(l, "@@"):
		return st.Cyan(l)
	}
	return l
}

// PlanJSON prints the plan as one JSON line: {"type":"plan","plan":{...}}.
func PlanJSON(w io.Writer, p *executor.Plan) error {
	return json.NewEncoder(w).Encode(struct {
		Type string         `json:"type"`
		Plan *executor.Plan `json:"plan"`
	}{"plan", p})
}
