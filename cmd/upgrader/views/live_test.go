package views

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s:\n%s", path, got)
	}
}

// A failing run as the live view prints it without a terminal, then its summary.
func TestLive_failedRunGolden(t *testing.T) {
	time.Local = time.UTC
	t0 := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	idx := func(i int) *int { return &i }
	evs := []executor.Event{
		{TS: at(0), Type: journal.RunStarted, Run: "20261128T101500-abcd"},
		{TS: at(0), Type: journal.NodeStarted, Node: "step.install"},
		{TS: at(1), Type: journal.ActionStarted, Node: "step.install", Host: "web", Index: idx(0), Action: "upload"},
		{TS: at(1), Type: executor.EvProgress, Node: "step.install", Host: "web", Done: 1 << 20, Total: 4 << 20},
		{TS: at(2), Type: journal.ActionFinished, Node: "step.install", Host: "web", Index: idx(0), Action: "upload", Changed: true, Message: "/tmp/app.tgz written"},
		{TS: at(2), Type: journal.ActionStarted, Node: "step.install", Host: "web", Index: idx(1), Action: "run"},
		{TS: at(3), Type: executor.EvLog, Node: "step.install", Host: "web", Message: "restarting app"},
		{TS: at(3), Type: journal.NodeFailed, Node: "step.install", Error: `host "web": run #2: exit 1, expected [0]`},
		{TS: at(3), Type: executor.EvRollbackStarted, Message: "rolling back phase standby, newest first"},
		{TS: at(3), Type: journal.UndoStarted, Node: "step.install"},
		{TS: at(4), Type: journal.UndoFinished, Node: "step.install", Host: "web", Index: idx(0)},
		{TS: at(4), Type: journal.UndoFinished, Node: "step.install"},
		{TS: at(4), Type: journal.NodeSkipped, Node: "step.later", Skipped: "when is false"},
	}
	var b bytes.Buffer
	l := NewLive(&b, Style{}, false)
	for _, ev := range evs {
		l.Event(ev)
	}
	l.Close()
	Summary(&b, &executor.Summary{Run: "20261128T101500-abcd", Outcome: executor.OutcomeRollbackIncomplete, ExitCode: 3,
		Failed: "step.install", Error: "exit 1", Elapsed: 4,
		Nodes: []executor.NodeSummary{
			{Node: "step.install", Kind: "step", State: executor.StateUndone, Elapsed: 3, Hosts: []string{"web"}},
			{Node: "step.prepare", Kind: "step", State: executor.StateUndoFailed, Elapsed: 1.5, Hosts: []string{"web"}},
		},
		Left: []string{"step.prepare (undo failed: host \"web\": connection refused): run #1 on web"}}, "/srv/.upgrader", Style{})
	golden(t, "live_failed.txt", b.String())
}

// On a terminal the status line shows the running node, its host, elapsed
// time, bytes done of total and the rate.
func TestLive_statusLineShowsBytesAndRate(t *testing.T) {
	var b bytes.Buffer
	l := NewLive(&b, Style{}, true)
	defer l.Close()
	now := time.Now()
	idx := 0
	l.Event(executor.Event{TS: now.Add(-3 * time.Second), Type: journal.NodeStarted, Node: "step.install"})
	l.Event(executor.Event{TS: now.Add(-3 * time.Second), Type: journal.ActionStarted, Node: "step.install", Host: "web", Index: &idx, Action: "upload"})
	l.Event(executor.Event{TS: now.Add(-2 * time.Second), Type: executor.EvProgress, Node: "step.install", Host: "web", Done: 0, Total: 8 << 20})
	l.Event(executor.Event{TS: now, Type: executor.EvProgress, Node: "step.install", Host: "web", Done: 4 << 20, Total: 8 << 20})
	l.mu.Lock()
	b.Reset()
	l.drawStatus()
	got := b.String()
	l.mu.Unlock()
	for _, want := range []string{"running: step.install[web] 3s", "4.0 MiB/8.0 MiB", "2.0 MiB/s"} {
		if !bytes.Contains([]byte(got), []byte(want)) {
			t.Errorf("status line %q lacks %q", got, want)
		}
	}
}

// `upgrader rollback` of a run that had finished: no failing node to name.
func TestSummary_rollbackOnRequest(t *testing.T) {
	for _, c := range []struct {
		outcome, from, want string
	}{
		{executor.OutcomeRolledBack, executor.OutcomeDone, "Run R was done and has been rolled back on request (2s).\n"},
		{executor.OutcomeRolledBack, executor.OutcomeFailed, "Run R had failed (left as it was) and has been rolled back on request (2s).\n"},
		{executor.OutcomeRolledBack, executor.OutcomeInterrupted, "Run R was interrupted and has been rolled back on request (2s).\n"},
		{executor.OutcomeRollbackIncomplete, executor.OutcomeDone, "Run R was done; the rollback asked for is INCOMPLETE: a human must look.\n"},
	} {
		var b bytes.Buffer
		Summary(&b, &executor.Summary{Run: "R", Outcome: c.outcome, RolledBackFrom: c.from, Elapsed: 2}, "/s", Style{})
		if !bytes.Contains(b.Bytes(), []byte("\n"+c.want)) {
			t.Errorf("%s from %s:\n%s\nwant the line %q", c.outcome, c.from, b.String(), c.want)
		}
		if bytes.Contains(b.Bytes(), []byte("failed at")) {
			t.Errorf("names no failing node:\n%s", b.String())
		}
	}
}
