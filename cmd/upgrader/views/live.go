package views

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/modules"
)

// JSONEvents returns an observer printing one JSON event per line.
func JSONEvents(w io.Writer) func(executor.Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(ev executor.Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
}

// Live shows a run as it happens: one line per event and, on a terminal,
// a status line below them with the running nodes, their hosts, elapsed
// time and bytes moved.
type Live struct {
	w      io.Writer
	st     Style
	tty    bool
	mu     sync.Mutex
	run    map[string]*running // node or node@host -> what runs
	status string              // the status line drawn now
	paused string              // a gate's question is on the terminal: no status line until it is answered
	stop   chan struct{}
	done   chan struct{}
}

type running struct {
	node, host  string
	since       time.Time
	done, total int64
	rateFrom    time.Time
	rateBytes   int64
	rate        float64
}

// NewLive returns a live view; tty enables the redrawn status line.
func NewLive(w io.Writer, st Style, tty bool) *Live {
	l := &Live{w: w, st: st, tty: tty, run: map[string]*running{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.ticker()
	return l
}

// Close stops the status line.
func (l *Live) Close() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	l.clearStatus()
	l.mu.Unlock()
}

func (l *Live) ticker() {
	defer close(l.done)
	if !l.tty {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.drawStatus()
			l.mu.Unlock()
		}
	}
}

func (l *Live) clearStatus() {
	if l.tty && l.status != "" {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.status = ""
	}
}

func (l *Live) drawStatus() {
	if !l.tty || l.paused != "" {
		return
	}
	keys := make([]string, 0, len(l.run))
	for k := range l.run {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	now := time.Now()
	for _, k := range keys {
		r := l.run[k]
		s := r.node
		if r.host != "" {
			s += "[" + r.host + "]"
		}
		s += " " + now.Sub(r.since).Round(time.Second).String()
		if r.done > 0 {
			if r.total > 0 {
				s += fmt.Sprintf(" %s/%s", modules.HumanBytes(r.done), modules.HumanBytes(r.total))
			} else {
				s += " " + modules.HumanBytes(r.done)
			}
			if r.rate > 0 {
				s += fmt.Sprintf(" %s/s", modules.HumanBytes(int64(r.rate)))
			}
		}
		parts = append(parts, s)
	}
	line := ""
	if len(parts) > 0 {
		line = "running: " + strings.Join(parts, " | ")
		if len(line) > 160 {
			line = line[:157] + "..."
		}
	}
	fmt.Fprint(l.w, "\r\x1b[K"+l.st.Cyan(line))
	l.status = line
}

// Event is the executor's Observer.
func (l *Live) Event(ev executor.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := ev.Node
	if ev.Host != "" {
		key += "@" + ev.Host
	}
	if ev.Type == executor.EvProgress {
		r := l.run[key]
		if r == nil {
			r = &running{node: ev.Node, host: ev.Host, since: ev.TS}
			l.run[key] = r
		}
		if r.rateFrom.IsZero() {
			r.rateFrom, r.rateBytes = ev.TS, ev.Done
		} else if dt := ev.TS.Sub(r.rateFrom).Seconds(); dt > 0.5 {
			r.rate = float64(ev.Done-r.rateBytes) / dt
			r.rateFrom, r.rateBytes = ev.TS, ev.Done
		}
		r.done, r.total = ev.Done, ev.Total
		return
	}
	line := l.line(ev)
	switch ev.Type {
	case journal.NodeStarted:
		l.run[ev.Node] = &running{node: ev.Node, since: ev.TS}
	case journal.ActionStarted:
		if _, ok := l.run[key]; !ok {
			l.run[key] = &running{node: ev.Node, host: ev.Host, since: ev.TS}
		}
		if r := l.run[ev.Node]; r != nil && r.host == "" {
			delete(l.run, ev.Node) // shown per host from now on
		}
	case executor.EvWaiting:
		l.paused = ev.Node
	case journal.NodeFinished, journal.NodeFailed, journal.NodeSkipped, journal.Approved, journal.Rejected:
		if l.paused == ev.Node {
			l.paused = ""
		}
		for k, r := range l.run {
			if r.node == ev.Node {
				delete(l.run, k)
			}
		}
	}
	if line == "" {
		return
	}
	l.clearStatus()
	fmt.Fprintln(l.w, line)
	l.drawStatus()
}

func (l *Live) line(ev executor.Event) string {
	st := l.st
	ts := st.Dim(ev.TS.Local().Format("15:04:05"))
	where := ev.Node
	if ev.Host != "" {
		where += " [" + ev.Host + "]"
	}
	switch ev.Type {
	case journal.RunStarted:
		return fmt.Sprintf("%s %s", ts, st.Bold("run "+ev.Run+" started"))
	case journal.RunResumed:
		if ev.Message == "rollback" {
			return fmt.Sprintf("%s %s", ts, st.Bold("run "+ev.Run+": rollback started"))
		}
		return fmt.Sprintf("%s %s", ts, st.Bold("run "+ev.Run+" resumed"))
	case journal.NodeStarted:
		return fmt.Sprintf("%s %-9s %s", ts, "start", where)
	case journal.ActionFinished:
		what := "done"
		if ev.Skipped != "" {
			what = "skipped (" + ev.Skipped + ")"
		} else if ev.Changed {
			what = "changed"
		} else {
			what = "unchanged"
		}
		msg := ""
		if ev.Message != "" {
			msg = ": " + firstLine(ev.Message)
		}
		return fmt.Sprintf("%s %-9s %s #%d %s %s%s", ts, "", where, *ev.Index+1, ev.Action, what, st.Dim(msg))
	case journal.NodeFinished:
		msg := ""
		if ev.Changed {
			msg = " (changed)"
		}
		return fmt.Sprintf("%s %s %s%s", ts, st.Green(pad("done", 9)), ev.Node, msg)
	case journal.NodeFailed:
		return fmt.Sprintf("%s %s %s: %s", ts, st.Red(pad("FAILED", 9)), ev.Node, st.Red(ev.Error))
	case journal.NodeSkipped:
		return fmt.Sprintf("%s %s %s (%s)", ts, st.Dim(pad("skipped", 9)), ev.Node, ev.Skipped)
	case journal.Approved:
		if ev.Message != "" { // by whom
			return fmt.Sprintf("%s %s %s %s", ts, st.Green(pad("approved", 9)), ev.Node, ev.Message)
		}
		return fmt.Sprintf("%s %s %s", ts, st.Green(pad("approved", 9)), ev.Node)
	case journal.Rejected:
		return fmt.Sprintf("%s %s %s %s", ts, st.Red(pad("REJECTED", 9)), ev.Node, st.Red(ev.Message))
	case executor.EvWaiting:
		return fmt.Sprintf("%s %s %s: %s", ts, st.Yellow(pad("waiting", 9)), ev.Node, ev.Message)
	case executor.EvRollbackStarted:
		return fmt.Sprintf("%s %s", ts, st.Yellow("ROLLBACK: "+ev.Message))
	case journal.UndoStarted:
		if ev.Host == "" {
			return fmt.Sprintf("%s %s %s", ts, st.Yellow(pad("undo", 9)), where)
		}
		return ""
	case journal.UndoFinished:
		if ev.Host == "" {
			return fmt.Sprintf("%s %s %s", ts, st.Yellow(pad("undone", 9)), where)
		}
		idx := ""
		if ev.Index != nil {
			idx = fmt.Sprintf(" #%d", *ev.Index+1)
		}
		return fmt.Sprintf("%s %-9s %s%s", ts, "", where, idx+" undone")
	case journal.UndoFailed:
		return fmt.Sprintf("%s %s %s: %s", ts, st.Red(pad("UNDO FAILED", 9)), where, st.Red(ev.Error))
	case journal.Escalation:
		return fmt.Sprintf("%s %s %s", ts, st.Yellow(pad("escalate", 9)), ev.Message)
	case executor.EvLog:
		if ev.Message == "" {
			return ""
		}
		return st.Dim(fmt.Sprintf("         | %s: %s", where, ev.Message))
	}
	return ""
}

// pad pads s to n characters, so that colors do not break the columns.
func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// wasOutcome says what a run was before `upgrader rollback` undid it.
func wasOutcome(outcome string) string {
	switch outcome {
	case executor.OutcomeDone:
		return "was done"
	case executor.OutcomeFailed:
		return "had failed (left as it was)"
	case executor.OutcomeRollbackIncomplete:
		return "had an incomplete rollback"
	}
	return "was interrupted"
}

// Summary prints the end of a run.
func Summary(w io.Writer, s *executor.Summary, stateDir string, st Style) {
	fmt.Fprintln(w)
	for _, n := range s.Nodes {
		state := pad(n.State, 12)
		switch n.State {
		case executor.StateDone:
			state = st.Green(state)
		case executor.StateFailed, executor.StateUndoFailed:
			state = st.Red(state)
		case executor.StateUndone, executor.StateSkipped:
			state = st.Yellow(state)
		default:
			state = st.Dim(state)
		}
		el := ""
		if n.Elapsed > 0 {
			el = (time.Duration(n.Elapsed*1000) * time.Millisecond).Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "  %-32s %s %9s  %s\n", n.Node, state, el, st.Dim(strings.Join(n.Hosts, ",")))
	}
	fmt.Fprintln(w)
	el := (time.Duration(s.Elapsed*1000) * time.Millisecond).Round(10 * time.Millisecond)
	switch {
	case s.RolledBackFrom != "" && s.Outcome == executor.OutcomeRolledBack:
		fmt.Fprintln(w, st.Yellow(st.Bold(fmt.Sprintf("Run %s %s and has been rolled back on request (%s).", s.Run, wasOutcome(s.RolledBackFrom), el))))
	case s.RolledBackFrom != "" && s.Outcome == executor.OutcomeRollbackIncomplete:
		fmt.Fprintln(w, st.Red(st.Bold(fmt.Sprintf("Run %s %s; the rollback asked for is INCOMPLETE: a human must look.", s.Run, wasOutcome(s.RolledBackFrom)))))
	case s.Outcome == executor.OutcomeDone:
		fmt.Fprintln(w, st.Green(st.Bold(fmt.Sprintf("Run %s done in %s.", s.Run, el))))
	case s.Outcome == executor.OutcomeRolledBack:
		fmt.Fprintln(w, st.Yellow(st.Bold(fmt.Sprintf("Run %s failed at %s and was rolled back (%s).", s.Run, s.Failed, el))))
	case s.Outcome == executor.OutcomeFailed:
		fmt.Fprintln(w, st.Red(st.Bold(fmt.Sprintf("Run %s failed at %s; left as it is (on_failure = \"stop\").", s.Run, s.Failed))))
	case s.Outcome == executor.OutcomeRollbackIncomplete:
		fmt.Fprintln(w, st.Red(st.Bold(fmt.Sprintf("Run %s failed at %s and its ROLLBACK IS INCOMPLETE: a human must look.", s.Run, s.Failed))))
	case s.Outcome == executor.OutcomeInterrupted:
		fmt.Fprintln(w, st.Yellow(st.Bold(fmt.Sprintf("Run %s interrupted. Continue it with: upgrader resume %s", s.Run, s.Run))))
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  cause: %s\n", st.Red(s.Error))
	}
	if len(s.Left) > 0 {
		fmt.Fprintln(w, st.Red("Left to undo by hand, newest first:"))
		for _, l := range s.Left {
			fmt.Fprintf(w, "  - %s\n", l)
		}
		fmt.Fprintf(w, "When fixed, retry the rollback with: upgrader rollback %s\n", s.Run)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  %s\n", st.Yellow("note: "+n))
	}
	fmt.Fprintln(w, st.Dim(fmt.Sprintf("Journal: %s", journal.Path(stateDir, s.Run))))
}
