package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

func init() {
	register("approve", "release a gate (or end an observation window early): approve [DIR] RUN NODE [-as NAME]", func(args []string, stdout, stderr io.Writer) int {
		return runDecide("approve", args, stdout, stderr)
	})
	register("reject", "refuse a gate: the run fails there and rolls back: reject [DIR] RUN NODE -reason TEXT [-as NAME]", func(args []string, stdout, stderr io.Writer) int {
		return runDecide("reject", args, stdout, stderr)
	})
}

// runDecide is `upgrader approve` and `upgrader reject`.
func runDecide(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(cmd, stderr)
	var c common
	c.register(fs)
	as := fs.String("as", "", "decide as NAME (one of the gate's approvers) instead of the local user name")
	reason := fs.String("reason", "", "why (reject: required; shown in the journal, status, the report and notifications)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	dir := "."
	if len(pos) == 3 {
		dir, pos = pos[0], pos[1:]
	}
	if len(pos) != 2 {
		if cmd == "reject" {
			fmt.Fprintln(stderr, `usage: upgrader reject [DIR] RUN NODE -reason "why" [-as NAME]   (NODE like gate.go_primary)`)
		} else {
			fmt.Fprintln(stderr, "usage: upgrader approve [DIR] RUN NODE [-as NAME]   (NODE like gate.go_primary or observe.standby_soak)")
		}
		return exitInvalid
	}
	run, node := pos[0], pos[1]
	if !strings.Contains(node, ".") {
		node = "gate." + node // `approve RUN go_primary` means the gate
	}
	if cmd == "reject" {
		if strings.TrimSpace(*reason) == "" {
			fmt.Fprintln(stderr, `upgrader reject: -reason "..." is required: say why, for the people who read the run later`)
			return exitInvalid
		}
		if !strings.HasPrefix(node, "gate.") {
			fmt.Fprintf(stderr, "upgrader reject: %s is not a gate; only gates can be rejected\n", node)
			return exitInvalid
		}
	}
	store, err := storeForDir(context.Background(), &c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader %s: %s\n", cmd, err)
		return exitInvalid
	}
	defer store.Close()
	me := runstore.Me(run)
	a := journal.Approval{By: me.User + "@" + me.Host, As: strings.TrimSpace(*as), Reason: strings.TrimSpace(*reason)}
	if cmd == "reject" {
		a.Decision = journal.DecisionRejected
	}
	// The gate's approvers: from the run's configuration.
	if rs, err := executor.ReplayFrom(context.Background(), store, run); err == nil && rs.Dir != "" {
		if cfg, _, ok := loadRunConfig(rs.Dir, &c, append(rs.VarArgs, c.vars...), append(rs.VarFiles, c.varFiles...), false, io.Discard); ok {
			if n := cfg.Nodes[node]; n != nil && n.Gate != nil && !n.Gate.MayDecide(a.Name()) {
				fmt.Fprintf(stderr, "upgrader %s: %s may be decided only by %s; you are %q (give your name with -as NAME if it differs from the local user)\n",
					cmd, node, strings.Join(n.Gate.Approvers, ", "), a.Name())
				return exitInvalid
			}
		}
	}
	var got *journal.Approval
	if local, ok := store.(*runstore.Local); ok {
		got, err = journal.Decide(local.Dir, run, node, a)
	} else if a.Decision == "" && a.As == "" {
		got, err = store.Approve(context.Background(), run, node, a.By)
	} else {
		err = fmt.Errorf("%s keeps approvals only: reject and -as need the local state backend for now", store.Where())
	}
	if err != nil {
		fmt.Fprintf(stderr, "upgrader %s: %s\n", cmd, err)
		return exitInvalid
	}
	if c.json {
		_ = json.NewEncoder(stdout).Encode(got)
		return exitOK
	}
	who := got.By
	if got.As != "" {
		who = got.As + " (" + got.By + ")"
	}
	if cmd == "reject" {
		fmt.Fprintf(stdout, "Rejected %s in run %s as %s: %s\nThe run fails at that gate and rolls back per its phase.\n", got.Node, run, who, got.Reason)
	} else {
		fmt.Fprintf(stdout, "Approved %s in run %s as %s.\n", got.Node, run, who)
	}
	return exitOK
}
