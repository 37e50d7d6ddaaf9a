package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules/observe"
	"github.com/upgrader-dev/upgrader/notify"
)

func onNode(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}

func init() {
	register("status", "the current or given run: nodes, state, observation windows", runStatus)
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", stderr)
	var c common
	c.register(fs)
	ref, ok := runTarget("status", fs, &c, args, stderr)
	if !ok {
		return exitInvalid
	}
	defer ref.store.Close()
	ctx := context.Background()
	run := ref.run
	// The configuration lists the nodes that have not started; status works without it.
	var cfg *lang.Config
	rs, err := executor.ReplayFrom(ctx, ref.store, run)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader status: %s\n", err)
		return exitInvalid
	}
	if ref.configDir(rs) != "" {
		if cf, _, ok := loadRunConfig(ref.configDir(rs), &c, append(rs.VarArgs, c.vars...), append(rs.VarFiles, c.varFiles...), false, io.Discard); ok {
			cfg = cf
		}
	}
	s := executor.StatusOfReplayed(ctx, ref.store, rs, cfg)
	windows, _ := observe.SummarizeFrom(func(fn func([]byte) error) error { return ref.store.Samples(ctx, run, fn) })
	failed := notify.ReadFailures(ref.stateDir, run)
	if c.json {
		type win struct {
			*observe.WindowSummary
			Open bool `json:"open"`
		}
		var ws []win
		for _, w := range windows {
			ws = append(ws, win{w, w.Open()})
		}
		out := struct {
			*executor.Status
			Windows []win            `json:"observation_windows,omitempty"`
			Notify  []notify.Failure `json:"notify_failures,omitempty"`
		}{s, ws, failed}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return exitOK
	}
	st := views.NewStyle(fileOf(stdout), c.noColor)
	views.Status(stdout, s, st)
	if len(windows) > 0 {
		fmt.Fprintf(stdout, "\n%s\n", st.Bold("Observation windows"))
		for _, w := range windows {
			fmt.Fprint(stdout, w.Text(time.Now()))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "\n%s\n", st.Bold("Notifications not delivered"))
		for _, f := range failed {
			fmt.Fprintf(stdout, "  %s  notify %q: %s%s after %d attempt(s): %s\n", f.TS.Format("2006-01-02 15:04:05Z"), f.Notify, f.Event, onNode(f.Node), f.Attempts, f.Error)
		}
	}
	return exitOK
}
