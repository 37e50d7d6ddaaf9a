package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

// Node states.
const (
	StatePending    = "pending"
	StateRunning    = "running"
	StateDone       = "done"
	StateFailed     = "failed"
	StateSkipped    = "skipped"
	StateUndone     = "undone"
	StateUndoFailed = "undo_failed"
)

// RunState is a run as its journal tells it. Apply keeps one up to date as
// it journals; resume, rollback and status rebuild it by replaying.
type RunState struct {
	ID         string
	ConfigHash string
	Dir        string
	VarArgs    []string
	VarFiles   []string
	Vars       map[string]string
	// SensitiveDigests of the values the run started with (SensitiveDigests).
	SensitiveDigests map[string]string
	Started          time.Time
	Finished         time.Time
	Outcome          string // "" while running or when interrupted
	Left             []string
	Error            string

	Nodes map[string]*NodeState
	// Order lists nodes in the order they started (newest last): the undo
	// stack, since a node's undo must come before that of anything it followed.
	Order       []string
	Outputs     map[string]map[string]cty.Value
	Checkpoints map[string]json.RawMessage
	Torn        *journal.Torn
}

// NodeState is one node in a run.
type NodeState struct {
	Addr     string
	Kind     string
	Phase    string
	State    string
	Started  time.Time
	Finished time.Time
	Error    string
	Reason   string
	Changed  bool
	Hosts    []string
	Actions  []*ActionState // in the order they started
	Undo     json.RawMessage
	Undoing  bool // undo_started seen, not finished
}

// ActionState is one action of a step on one host.
type ActionState struct {
	Host     string
	Index    int
	Kind     string
	Finished bool
	Changed  bool
	Skipped  string
	State    json.RawMessage // undo state recorded
	Undone   bool
}

func newRunState() *RunState {
	return &RunState{Nodes: map[string]*NodeState{}, Outputs: map[string]map[string]cty.Value{}, Checkpoints: map[string]json.RawMessage{}}
}

func (s *RunState) node(addr string) *NodeState {
	n := s.Nodes[addr]
	if n == nil {
		n = &NodeState{Addr: addr, State: StatePending}
		s.Nodes[addr] = n
	}
	return n
}

func (n *NodeState) action(host string, idx int) *ActionState {
	for _, a := range n.Actions {
		if a.Host == host && a.Index == idx {
			return a
		}
	}
	return nil
}

// Apply folds one journal event into the state.
func (s *RunState) Apply(ev journal.Event) error {
	var d evData
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("journal %s event: %w", ev.Type, err)
		}
	}
	switch ev.Type {
	case journal.RunStarted:
		s.ID, s.ConfigHash, s.Dir = d.Run, d.ConfigHash, d.Dir
		s.VarArgs, s.VarFiles, s.Vars = d.VarArgs, d.VarFiles, d.Vars
		s.SensitiveDigests = d.SensitiveDigests
		s.Started = ev.TS
	case journal.RunResumed:
		s.Finished, s.Outcome, s.Left, s.Error = time.Time{}, "", nil, ""
		if d.Via == "" {
			// nodes in flight at the crash run again (resume checked they may)
			for _, n := range s.Nodes {
				if n.State == StateRunning {
					n.State = StatePending
				}
			}
		}
	case journal.NodeStarted:
		n := s.node(ev.Node)
		n.Kind, n.Phase, n.Hosts = d.Kind, d.Phase, d.Hosts
		if n.State == StatePending {
			// a retried node keeps its first place in the undo stack
			if n.Started.IsZero() {
				s.Order = append(s.Order, ev.Node)
			}
		}
		n.State, n.Started, n.Error = StateRunning, ev.TS, ""
	case journal.ActionStarted:
		n := s.node(ev.Node)
		idx := 0
		if ev.Index != nil {
			idx = *ev.Index
		}
		if a := n.action(ev.Host, idx); a != nil {
			a.Finished = false // re-run on resume
		} else {
			n.Actions = append(n.Actions, &ActionState{Host: ev.Host, Index: idx, Kind: d.Kind})
		}
	case journal.UndoState:
		n := s.node(ev.Node)
		if ev.Index == nil {
			n.Undo = d.State
		} else if a := n.action(ev.Host, *ev.Index); a != nil {
			a.State = d.State
		}
	case journal.ActionFinished:
		if ev.Index == nil {
			break
		}
		if a := s.node(ev.Node).action(ev.Host, *ev.Index); a != nil {
			a.Finished, a.Changed, a.Skipped = true, d.Changed, d.Skipped
			if len(d.State) > 0 {
				a.State = d.State
			}
		}
	case journal.NodeOutput:
		outs, err := decodeOutputs(d)
		if err != nil {
			return fmt.Errorf("outputs of %s: %w", ev.Node, err)
		}
		s.Outputs[ev.Node] = outs
	case journal.NodeFinished:
		n := s.node(ev.Node)
		n.State, n.Finished, n.Changed = StateDone, ev.TS, d.Changed
		if len(d.State) > 0 {
			n.Undo = d.State
		}
	case journal.NodeFailed:
		n := s.node(ev.Node)
		n.State, n.Finished, n.Error = StateFailed, ev.TS, d.Error
		if len(d.State) > 0 {
			n.Undo = d.State
		}
	case journal.NodeSkipped:
		n := s.node(ev.Node)
		n.Kind, n.Phase = d.Kind, d.Phase
		n.State, n.Reason, n.Started, n.Finished = StateSkipped, d.Skipped, ev.TS, ev.TS
	case journal.Checkpoint:
		s.Checkpoints[d.Key] = d.Value
	case journal.UndoStarted:
		if ev.Index == nil && ev.Host == "" {
			s.node(ev.Node).Undoing = true
		}
	case journal.UndoFinished:
		n := s.node(ev.Node)
		if ev.Index != nil {
			if a := n.action(ev.Host, *ev.Index); a != nil {
				a.Undone = true
			}
		} else if ev.Host != "" {
			for _, a := range n.Actions {
				if a.Host == ev.Host {
					a.Undone = true
				}
			}
		} else {
			n.State, n.Undoing = StateUndone, false
		}
	case journal.UndoFailed:
		n := s.node(ev.Node)
		n.State, n.Undoing, n.Error = StateUndoFailed, false, d.Error
	case journal.RunFinished:
		s.Outcome, s.Finished, s.Left, s.Error = d.Outcome, ev.TS, d.Left, d.Error
	}
	return nil
}

// Replay reads a run's journal in a state directory into a RunState.
func Replay(stateDir, run string) (*RunState, error) {
	return ReplayFrom(context.Background(), runstore.OpenLocal(stateDir), run)
}

// ReplayFrom reads a run's journal from its store into a RunState.
func ReplayFrom(ctx context.Context, store runstore.Store, run string) (*RunState, error) {
	evs, torn, err := store.Events(ctx, run)
	if err != nil {
		return nil, err
	}
	s := newRunState()
	s.Torn = torn
	for _, ev := range evs {
		if err := s.Apply(ev); err != nil {
			return nil, err
		}
	}
	if s.ID == "" {
		s.ID = run
	}
	return s, nil
}

// encodeOutputs turns outputs into journal data: values as JSON with their
// types, so that resume restores them exactly. Sensitive values are never
// journaled: they come back unknown after a resume.
func encodeOutputs(outs map[string]cty.Value) (evData, error) {
	d := evData{Outputs: map[string]json.RawMessage{}, Types: map[string]json.RawMessage{}}
	names := make([]string, 0, len(outs))
	for k := range outs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := outs[k]
		if isSensitive(v) {
			d.Sensitive = append(d.Sensitive, k)
			continue
		}
		v, _ = v.UnmarkDeep()
		if !v.IsWhollyKnown() {
			continue
		}
		ty, err := ctyjson.MarshalType(v.Type())
		if err != nil {
			return d, err
		}
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return d, fmt.Errorf("output %s: %w", k, err)
		}
		d.Outputs[k], d.Types[k] = b, ty
	}
	return d, nil
}

func decodeOutputs(d evData) (map[string]cty.Value, error) {
	out := map[string]cty.Value{}
	for k, raw := range d.Outputs {
		ty, err := ctyjson.UnmarshalType(d.Types[k])
		if err != nil {
			return nil, fmt.Errorf("output %s: type: %w", k, err)
		}
		v, err := ctyjson.Unmarshal(raw, ty)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", k, err)
		}
		out[k] = v
	}
	for _, k := range d.Sensitive {
		out[k] = cty.DynamicVal
	}
	return out, nil
}
