package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/upgrader-dev/upgrader/executor/runstore"
)

func init() {
	register("approve", "release a gate (or end an observation window early): approve [DIR] RUN NODE", runApprove)
}

func runApprove(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("approve", stderr)
	var c common
	c.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	dir := "."
	if len(pos) == 3 {
		dir, pos = pos[0], pos[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: upgrader approve [DIR] RUN NODE   (NODE like gate.go_primary or observe.standby_soak)")
		return exitInvalid
	}
	run, node := pos[0], pos[1]
	if !strings.Contains(node, ".") {
		node = "gate." + node // `approve RUN go_primary` means the gate
	}
	store, err := storeForDir(context.Background(), &c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader approve: %s\n", err)
		return exitInvalid
	}
	defer store.Close()
	me := runstore.Me(run)
	a, err := store.Approve(context.Background(), run, node, me.User+"@"+me.Host)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader approve: %s\n", err)
		return exitInvalid
	}
	fmt.Fprintf(stdout, "Approved %s in run %s as %s.\n", a.Node, run, a.By)
	return exitOK
}
