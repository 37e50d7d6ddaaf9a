package main

import (
	"fmt"
	"github.com/hashicorp/hcl/v2"
	"io"
	"sort"
	"strings"

	"github.com/upgrader-dev/upgrader/lang"
)

func init() {
	register("graph", "print the dependency graph as DOT (phases as clusters)", runGraph)
}

func runGraph(args []string, stdout, stderr io.Writer) int {
	var c common
	dir, ok := parseDirCommand("graph", "Usage: upgrader graph [flags] [DIR]\n\nPrints the dependency graph of DIR (default .) in Graphviz DOT:\n  upgrader graph | dot -Tsvg > graph.svg\nAn edge A -> B means B runs after A. The graph is printed even when it has\na cycle (to find it); the exit status is then 2.\n\n", args, &c, stderr)
	if !ok {
		return exitInvalid
	}
	cfg, _, diags := loadAndValidate(dir, &c)
	printDiags(stderr, cfg.Files, diags, &c)
	if len(cfg.Nodes) == 0 && diags.HasErrors() {
		return exitInvalid
	}
	writeDOT(stdout, cfg)
	if diags.HasErrors() {
		return exitInvalid
	}
	return exitOK
}

// kindShapes draws each kind so the graph reads at a glance.
var kindShapes = map[string]string{
	"backup":       "cylinder",
	"check":        "ellipse",
	"gate":         "diamond",
	"observe":      "octagon",
	"schema_check": "hexagon",
	"migrate":      "box3d",
	"step":         "box",
}

// writeDOT prints cfg's graph: one cluster per phase (in phase order), the
// nodes outside phases, then every edge, all sorted so output is stable.
func writeDOT(w io.Writer, cfg *lang.Config) {
	fmt.Fprintln(w, "digraph upgrader {")
	fmt.Fprintln(w, "  rankdir = \"LR\";")
	fmt.Fprintln(w, "  compound = true;")
	fmt.Fprintln(w, "  node [shape = \"box\", fontname = \"Helvetica\", fontsize = 11];")
	addrs := make([]string, 0, len(cfg.Nodes))
	for a := range cfg.Nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, ph := range cfg.PhaseOrder {
		p := cfg.Phases[ph]
		fmt.Fprintf(w, "  subgraph %s {\n", dotID("cluster_"+ph))
		label := "phase " + ph
		if p.OnFailure == "stop" {
			label += " (on failure: stop)"
		}
		fmt.Fprintf(w, "    label = %s;\n    style = \"rounded\";\n", dotID(label))
		nodes := append([]string(nil), p.Nodes...)
		sort.Strings(nodes)
		for _, a := range nodes {
			fmt.Fprintf(w, "    %s;\n", dotNode(cfg, cfg.Nodes[a]))
		}
		fmt.Fprintln(w, "  }")
	}
	for _, a := range addrs {
		if n := cfg.Nodes[a]; n.Phase == "" {
			fmt.Fprintf(w, "  %s;\n", dotNode(cfg, n))
		}
	}
	for _, a := range addrs {
		for _, d := range cfg.Nodes[a].DependsOn {
			fmt.Fprintf(w, "  %s -> %s;\n", dotID(d), dotID(a))
		}
	}
	fmt.Fprintln(w, "}")
}

func dotNode(cfg *lang.Config, n *lang.Node) string {
	label := n.Addr
	switch {
	case n.Step != nil:
		if hosts := n.Step.HostNames; len(hosts) > 0 {
			label += "\non " + strings.Join(hosts, ", ")
		}
		var kinds []string
		for _, b := range n.Step.Actions {
			kinds = append(kinds, b.Kind)
		}
		if len(kinds) > 0 {
			label += "\n" + strings.Join(kinds, ", ")
		}
		if !n.Step.BackupRequired {
			label += "\n(backup waived)"
		}
	case n.Check != nil:
		var kinds []string
		for _, b := range n.Check.Probes {
			kinds = append(kinds, b.Kind)
		}
		label += "\n" + strings.Join(kinds, ", ")
	}
	if n.When != nil {
		label += "\nwhen " + exprText(cfg, n.When.Range(), 40)
	}
	shape := kindShapes[n.Kind]
	if shape == "" {
		shape = "box"
	}
	return fmt.Sprintf("%s [label = %s, shape = %s]", dotID(n.Addr), dotID(label), dotID(shape))
}

// dotID quotes s as a DOT string.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// exprText is the source text of rng, cut to max characters.
func exprText(cfg *lang.Config, rng hcl.Range, max int) string {
	f := cfg.Files[rng.Filename]
	if f == nil || rng.End.Byte > len(f.Bytes) || rng.Start.Byte > rng.End.Byte {
		return "..."
	}
	s := strings.Join(strings.Fields(string(f.Bytes[rng.Start.Byte:rng.End.Byte])), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max-3]) + "..."
	}
	return s
}
