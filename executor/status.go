package executor

import (
	"context"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/lang"
)

// Status is what `upgrader status` reports of one run.
type Status struct {
	Run      string    `json:"run"`
	Dir      string    `json:"dir,omitempty"`
	State    string    `json:"state"`             // running | interrupted | an outcome
	Outcome  string    `json:"outcome,omitempty"` // once finished
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Elapsed  float64   `json:"elapsed_s"`
	// Holder is the live process running it, when one does.
	Holder *journal.LockInfo `json:"holder,omitempty"`
	Error  string            `json:"error,omitempty"`
	Left   []string          `json:"left,omitempty"`
	Nodes  []NodeSummary     `json:"nodes"`
	Torn   string            `json:"journal_torn,omitempty"`
}

// RunStatus reads a run's journal (and the lock) into a Status. cfg may be
// nil (the configuration is gone): nodes that never started are then not listed.
func RunStatus(stateDir, run string, cfg *lang.Config) (*Status, error) {
	return StatusOf(context.Background(), runstore.OpenLocal(stateDir), run, cfg)
}

// StatusOf is RunStatus for a run in store.
func StatusOf(ctx context.Context, store runstore.Store, run string, cfg *lang.Config) (*Status, error) {
	rs, err := ReplayFrom(ctx, store, run)
	if err != nil {
		return nil, err
	}
	return StatusOfReplayed(ctx, store, rs, cfg), nil
}

// StatusOfReplayed is StatusOf for a run already replayed (a long run's
// journal is read once).
func StatusOfReplayed(ctx context.Context, store runstore.Store, rs *RunState, cfg *lang.Config) *Status {
	run := rs.ID
	s := &Status{Run: run, Dir: rs.Dir, Outcome: rs.Outcome, Started: rs.Started, Finished: rs.Finished, Error: rs.Error, Left: rs.Left}
	if rs.Torn != nil {
		s.Torn = rs.Torn.String()
	}
	if li, stale, err := store.Holder(ctx); err == nil && li != nil && li.Run == run && !stale {
		s.Holder = li
	}
	switch {
	case rs.Outcome != "" && rs.Outcome != OutcomeInterrupted:
		s.State = rs.Outcome
	case s.Holder != nil:
		s.State = "running"
	default:
		s.State = OutcomeInterrupted
	}
	end := rs.Finished
	if end.IsZero() {
		end = time.Now()
	}
	if !rs.Started.IsZero() {
		s.Elapsed = end.Sub(rs.Started).Seconds()
	}
	if cfg == nil {
		cfg = &lang.Config{Nodes: map[string]*lang.Node{}}
	}
	s.Nodes = nodeSummaries(cfg, rs)
	return s
}
