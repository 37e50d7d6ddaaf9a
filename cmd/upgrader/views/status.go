package views

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
)

// Status prints a run's state, node by node.
func Status(w io.Writer, s *executor.Status, st Style) {
	fmt.Fprintf(w, "%s  %s\n", st.Bold("Run "+s.Run), stateColor(st, s.State))
	if s.Dir != "" {
		fmt.Fprintf(w, "  configuration: %s\n", s.Dir)
	}
	fmt.Fprintf(w, "  started:  %s\n", s.Started.Local().Format(time.RFC3339))
	if !s.Finished.IsZero() {
		fmt.Fprintf(w, "  finished: %s (%s)\n", s.Finished.Local().Format(time.RFC3339), dur(s.Elapsed))
	} else {
		fmt.Fprintf(w, "  elapsed:  %s\n", dur(s.Elapsed))
	}
	if s.Holder != nil {
		fmt.Fprintf(w, "  running as pid %d on %s (%s)\n", s.Holder.PID, s.Holder.Host, s.Holder.User)
	} else if s.State == executor.OutcomeInterrupted {
		fmt.Fprintf(w, "  %s\n", st.Yellow("no process runs it: continue with `upgrader resume "+s.Run+"` or undo with `upgrader rollback "+s.Run+"`"))
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  cause: %s\n", st.Red(s.Error))
	}
	if s.Torn != "" {
		fmt.Fprintf(w, "  %s\n", st.Yellow("journal: "+s.Torn))
	}
	fmt.Fprintln(w)
	for _, n := range s.Nodes {
		el := ""
		if n.Elapsed > 0 {
			el = (time.Duration(n.Elapsed*1000) * time.Millisecond).Round(10 * time.Millisecond).String()
		} else if n.State == executor.StateRunning && !n.Started.IsZero() {
			el = time.Since(n.Started).Round(time.Second).String() + "+"
		}
		start := ""
		if !n.Started.IsZero() {
			start = n.Started.Local().Format("15:04:05")
		}
		extra := strings.Join(n.Hosts, ",")
		if n.Error != "" {
			extra += " " + st.Red(n.Error)
		}
		if n.Reason != "" {
			extra += " (" + n.Reason + ")"
		}
		fmt.Fprintf(w, "  %-32s %s %8s %9s  %s\n", n.Node, stateColor(st, pad(n.State, 12)), start, el, extra)
	}
	if len(s.Left) > 0 {
		fmt.Fprintln(w, st.Red("\nLeft to undo by hand, newest first:"))
		for _, l := range s.Left {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
}

func stateColor(st Style, s string) string {
	switch strings.TrimSpace(s) {
	case executor.StateDone:
		return st.Green(s)
	case executor.StateFailed, executor.StateUndoFailed, executor.OutcomeRollbackIncomplete:
		return st.Red(s)
	case executor.StateRunning:
		return st.Cyan(s)
	case executor.StateUndone, executor.StateSkipped, executor.OutcomeRolledBack, executor.OutcomeInterrupted:
		return st.Yellow(s)
	}
	return st.Dim(s)
}

func dur(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < time.Minute {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
