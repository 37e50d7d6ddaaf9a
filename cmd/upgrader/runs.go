package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

func init() {
	register("runs", "list the runs of the state store: id, who, when, state", runRuns)
}

// runInfo is one line of `upgrader runs`.
type runInfo struct {
	Run     string    `json:"run"`
	By      string    `json:"by,omitempty"`
	Started time.Time `json:"started"`
	State   string    `json:"state"`
	Holder  string    `json:"holder,omitempty"` // who runs it now
}

func runRuns(args []string, stdout, stderr io.Writer) int {
	var c common
	dir, ok := parseDirCommand("runs", "Usage: upgrader runs [flags] [DIR]\n\nLists the runs of DIR's state (its state block, or DIR/.upgrader): id, who\nstarted it, when, state, and who holds it now.\n\n", args, &c, stderr)
	if !ok {
		return exitInvalid
	}
	ctx := context.Background()
	store, err := storeForDir(ctx, &c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader runs: %s\n", err)
		return exitInvalid
	}
	defer store.Close()
	list, err := listRuns(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader runs: %s\n", err)
		return exitInvalid
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		for _, r := range list {
			_ = enc.Encode(struct {
				Type string `json:"type"`
				runInfo
			}{"run", r})
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "No runs in %s.\n", store.Where())
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tBY\tSTARTED\tSTATE")
	for _, r := range list {
		state := r.State
		if r.Holder != "" {
			state += " (" + r.Holder + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Run, r.By, r.Started.Local().Format("2006-01-02 15:04"), state)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d run(s) in %s.\n", len(list), store.Where())
	return exitOK
}

// listRuns reads each run's summary; a run whose summary is missing (or
// says running while nobody holds it) is judged from its journal.
func listRuns(ctx context.Context, store runstore.Store) ([]runInfo, error) {
	runs, err := store.Runs(ctx)
	if err != nil {
		return nil, err
	}
	holder, stale, err := store.Holder(ctx)
	if err != nil {
		return nil, err
	}
	var out []runInfo
	for _, run := range runs {
		ri := runInfo{Run: run}
		live := holder != nil && !stale && holder.Run == run
		sm, err := store.Summary(ctx, run)
		if err != nil {
			return nil, err
		}
		if sm != nil {
			ri.By, ri.Started, ri.State = sm.By, sm.Started, sm.Status
		}
		if sm == nil || (ri.State == "running" || ri.State == "rolling_back") && !live {
			rs, err := executor.ReplayFrom(ctx, store, run)
			if err != nil {
				ri.State = "unreadable: " + err.Error()
				out = append(out, ri)
				continue
			}
			ri.Started, ri.State = rs.Started, rs.Outcome
			if ri.State == "" {
				ri.State = executor.OutcomeInterrupted
			}
		}
		if live {
			ri.State, ri.Holder = "running", holderText(holder)
		}
		out = append(out, ri)
	}
	return out, nil
}
