package executor

import (
	"encoding/json"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

// Event is what the views receive: every journal event, plus view-only
// ones ("progress", "log", "waiting", "rollback_started"). With -json each is
// printed as one line (docs/JSON.md).
type Event struct {
	TS      time.Time      `json:"ts"`
	Type    string         `json:"type"`
	Run     string         `json:"run,omitempty"`
	Node    string         `json:"node,omitempty"`
	Kind    string         `json:"kind,omitempty"`
	Phase   string         `json:"phase,omitempty"`
	Host    string         `json:"host,omitempty"`
	Index   *int           `json:"index,omitempty"`
	Action  string         `json:"action,omitempty"` // action kind (upload, run, ...)
	Message string         `json:"message,omitempty"`
	Error   string         `json:"error,omitempty"`
	Changed bool           `json:"changed,omitempty"`
	Skipped string         `json:"skipped,omitempty"` // why a node or action was skipped
	Outputs map[string]any `json:"outputs,omitempty"`
	Elapsed float64        `json:"elapsed_s,omitempty"`
	Done    int64          `json:"done,omitempty"`  // progress: bytes done
	Total   int64          `json:"total,omitempty"` // progress: bytes total, -1 unknown
	Outcome string         `json:"outcome,omitempty"`
	Summary *Summary       `json:"summary,omitempty"` // run_finished
}

// View-only event types.
const (
	EvProgress        = "progress"
	EvLog             = "log"
	EvWaiting         = "waiting" // a gate waits for approval
	EvRollbackStarted = "rollback_started"
	EvEscalation      = journal.Escalation
)

// Summary ends a run: what happened to each node and what is left for a human.
type Summary struct {
	Run      string        `json:"run"`
	Outcome  string        `json:"outcome"`
	ExitCode int           `json:"exit_code"`
	Failed   string        `json:"failed_node,omitempty"`
	Error    string        `json:"error,omitempty"`
	Elapsed  float64       `json:"elapsed_s"`
	Nodes    []NodeSummary `json:"nodes"`
	// Left lists, for rollback_incomplete, exactly what a human must undo.
	Left []string `json:"left,omitempty"`
	// Notes: changes that nothing can undo (a run action without a rollback block).
	Notes []string `json:"notes,omitempty"`
	// RolledBackFrom is, for `upgrader rollback`, the run's outcome before
	// (done, failed, interrupted, rollback_incomplete); Failed is then empty.
	RolledBackFrom string `json:"rolled_back_from,omitempty"`
}

// NodeSummary is one node's final state.
type NodeSummary struct {
	Node     string    `json:"node"`
	Kind     string    `json:"kind"`
	Phase    string    `json:"phase,omitempty"`
	State    string    `json:"state"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Elapsed  float64   `json:"elapsed_s,omitempty"`
	Error    string    `json:"error,omitempty"`
	Reason   string    `json:"reason,omitempty"` // why skipped
	Changed  bool      `json:"changed,omitempty"`
	Hosts    []string  `json:"hosts,omitempty"`
}

// evData is the data of journal events (one struct for all types; each
// type fills its own fields).
type evData struct {
	// run_started
	Run        string            `json:"run,omitempty"`
	ConfigHash string            `json:"config_hash,omitempty"`
	Dir        string            `json:"dir,omitempty"`
	Vars       map[string]string `json:"vars,omitempty"`
	VarArgs    []string          `json:"var_args,omitempty"`
	VarFiles   []string          `json:"var_files,omitempty"`
	// SensitiveDigests: keyed digests of the sensitive variables' values
	// (SensitiveDigests), so resume and rollback notice a missing or other value.
	SensitiveDigests map[string]string `json:"sensitive_digests,omitempty"`
	Version          string            `json:"version,omitempty"`
	PID              int               `json:"pid,omitempty"`
	By               string            `json:"by,omitempty"` // user@host (run_started, approved)

	// node_started, action_started
	Kind  string   `json:"kind,omitempty"`
	Phase string   `json:"phase,omitempty"`
	Hosts []string `json:"hosts,omitempty"`

	// undo_state, action_finished (undo state), node_finished (module undo state)
	State json.RawMessage `json:"state,omitempty"`

	Changed bool   `json:"changed,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`

	// node_output: the outputs as JSON; Types their cty types (JSON-encoded).
	Outputs   map[string]json.RawMessage `json:"outputs,omitempty"`
	Types     map[string]json.RawMessage `json:"types,omitempty"`
	Sensitive []string                   `json:"sensitive,omitempty"`

	// checkpoint
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`

	// undo_*: how ("rollback block", "undo"); attempts made
	Via      string `json:"via,omitempty"`
	Attempts int    `json:"attempts,omitempty"`

	// escalation
	Checks   []string `json:"checks,omitempty"`
	Failing  []string `json:"failing,omitempty"`
	Rollback string   `json:"rollback,omitempty"`

	// run_finished
	Outcome string   `json:"outcome,omitempty"`
	Left    []string `json:"left,omitempty"`
	Retry   string   `json:"retry,omitempty"` // run_resumed: the node re-run by -retry
}
