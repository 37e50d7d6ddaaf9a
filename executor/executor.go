// Package executor owns what happens between a loaded configuration and the
// hosts: plan (read-only), apply (the parallel walk, the journal, the backup
// interlock at apply time), rollback, resume and status. It implements
// modules.Env for the modules it calls.
//
// It imports lang, modules, executor/dag and executor/journal; never cmd or
// a module package (modules come through the Registry).
package executor

import (
	"context"
	"io"
	"time"

	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// Hosts gives the executor a connection to each configured host. The SSH
// transport (executor/ssh) implements it in production; unit tests give
// in-memory hosts.
type Hosts interface {
	// Target returns the host's Target, connecting on first use.
	Target(ctx context.Context, h *lang.Host) (modules.Target, error)
	Close() error
}

// Options configure a plan or a run.
type Options struct {
	Config   *lang.Config
	Registry *modules.Registry
	StateDir string
	// Store keeps the run's state (journal, lock, approvals, samples); nil:
	// the state directory (runstore.Local). StateDir stays where backup
	// archives and the report go.
	Store runstore.Store
	Hosts Hosts // nil: offline (plan only)

	Parallelism int // independent nodes at once; <= 0: 10

	// Observer receives every event for the views; nil: none. It is called
	// from many goroutines, one event at a time (the executor serialises).
	Observer func(Event)
	// Log receives module progress lines and streamed command output.
	Log io.Writer

	// Prompt asks the operator a yes/no question on a terminal (gates);
	// nil when there is no terminal: gates then wait for `upgrader approve`.
	Prompt func(ctx context.Context, question string) (bool, error)

	// Vars and VarFiles are the -var/-var-file arguments the configuration
	// was loaded with, recorded (without sensitive values) so that resume
	// and saved plans load it the same way.
	Vars     []string
	VarFiles []string

	// UndoAttempts bounds the tries of one undo (default 3); UndoBackoff is
	// the first wait between them, doubled each time (default 1s).
	UndoAttempts int
	UndoBackoff  time.Duration
	// ApprovalPoll is how often a gate looks for an approval (default 1s).
	ApprovalPoll time.Duration

	// RunID, when set, is used instead of a fresh id (apply -detach picks
	// the id before re-executing itself).
	RunID string
	// Version is upgrader's version, recorded in run_started.
	Version string
	// Force lets rollback continue a run whose sensitive variables differ
	// from those it started with (resume has ResumeOptions.Force).
	Force bool
}

func (o *Options) store() runstore.Store {
	if o.Store == nil {
		o.Store = runstore.OpenLocal(o.StateDir)
	}
	return o.Store
}

func (o *Options) parallelism() int {
	if o.Parallelism <= 0 {
		return 10
	}
	return o.Parallelism
}

func (o *Options) undoAttempts() int {
	if o.UndoAttempts <= 0 {
		return 3
	}
	return o.UndoAttempts
}

func (o *Options) undoBackoff() time.Duration {
	if o.UndoBackoff <= 0 {
		return time.Second
	}
	return o.UndoBackoff
}

func (o *Options) approvalPoll() time.Duration {
	if o.ApprovalPoll <= 0 {
		return time.Second
	}
	return o.ApprovalPoll
}

func (o *Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Outcomes of a run (run_finished), and the exit code each maps to.
const (
	OutcomeDone               = "done"
	OutcomeFailed             = "failed"      // failed, left as is (on_failure = "stop")
	OutcomeRolledBack         = "rolled_back" // failed and rolled back
	OutcomeRollbackIncomplete = "rollback_incomplete"
	OutcomeInterrupted        = "interrupted" // cancelled; resumable
)

// ExitCode maps an outcome to upgrader's exit code (SPEC 3).
func ExitCode(outcome string) int {
	switch outcome {
	case OutcomeDone:
		return 0
	case OutcomeFailed, OutcomeRolledBack, OutcomeInterrupted:
		return 1
	case OutcomeRollbackIncomplete:
		return 3
	}
	return 1
}
