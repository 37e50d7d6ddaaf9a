// Package runstore keeps run state behind one interface: runs and their
// journal (events appended durably, replayed in order), the run lock (a
// lease on shared stores), approvals, the run summary, observation samples
// and the backup index. Checkpoints are journal events.
//
// Local (this package) keeps today's files in the state directory
// (.upgrader/); runstore/pgstore keeps them in PostgreSQL so that a team
// shares them. Every implementation passes runstore/storetest.
package runstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

// The journal's types are the store's: the executor builds events, a store
// only keeps them in order.
type (
	Event       = journal.Event
	Torn        = journal.Torn
	Holder      = journal.LockInfo
	LockedError = journal.LockedError
	Approval    = journal.Approval
	Summary     = journal.State
	// EmptyError: a run whose journal holds no run_started.
	EmptyError = journal.EmptyError
)

// ErrNoRun is returned (wrapped) for a run the store does not hold.
var ErrNoRun = errors.New("no such run")

// Store is where runs live. Methods are safe for concurrent use; a Store is
// one process's handle, several handles (processes, machines) may share
// one store.
type Store interface {
	// Where names the store in messages ("/srv/app/.upgrader",
	// `postgres workspace "shop-prod"`); never a secret.
	Where() string

	// Runs lists the runs that have a journal, oldest first.
	Runs(ctx context.Context) ([]string, error)
	// Events returns run's events in append order. A torn last event (a
	// store whose appends can be cut by a crash) is returned apart. A run
	// without run_started first is an *EmptyError; a damaged one an error.
	Events(ctx context.Context, run string) ([]Event, *Torn, error)

	// Lock takes the store's run lock for a new run. When someone holds it:
	// *LockedError naming the holder.
	Lock(ctx context.Context, run string) (Lock, error)
	// TakeOver takes the lock for run (resume, rollback) when it is free,
	// or held by run itself and stale (the holder died, its lease expired).
	TakeOver(ctx context.Context, run string) (Lock, error)
	// Holder returns who holds the lock (nil when free) and whether the
	// holder is stale.
	Holder(ctx context.Context) (*Holder, bool, error)
	// Unlock clears the lock: only a stale one unless force.
	Unlock(ctx context.Context, force bool) (*Holder, error)

	// Approve records an approval of node in run (`upgrader approve`).
	Approve(ctx context.Context, run, node, by string) (*Approval, error)
	// Approval returns node's approval in run, nil when there is none.
	Approval(ctx context.Context, run, node string) (*Approval, error)

	// PutSummary replaces run's summary (status, pid); Summary reads it
	// (nil when there is none).
	PutSummary(ctx context.Context, s Summary) error
	Summary(ctx context.Context, run string) (*Summary, error)

	// AppendSamples appends observation records (JSON lines, each ending
	// with a newline) to run's samples, all or nothing. Samples streams
	// them back in order; a torn tail is skipped.
	AppendSamples(ctx context.Context, run string, lines []byte) error
	Samples(ctx context.Context, run string, fn func(line []byte) error) error

	// PutBackup adds or replaces a backup's index entry; Backups lists them
	// by id; DeleteBackup removes one (the archive belongs to the backup
	// store, not to the index).
	PutBackup(ctx context.Context, b Backup) error
	Backups(ctx context.Context) ([]Backup, error)
	DeleteBackup(ctx context.Context, id string) error

	Close() error
}

// Lock is a held run lock.
type Lock interface {
	Holder() Holder
	// Create starts the run's journal (an error when the run has one);
	// Open continues it, cutting a torn last event (returned).
	Create(ctx context.Context) (Journal, error)
	Open(ctx context.Context) (Journal, *Torn, error)
	// Lost is closed once the holder no longer holds the lock (a lease not
	// renewed in time, then taken over). A local lock is never lost.
	Lost() <-chan struct{}
	Release() error
}

// Journal appends one run's events.
type Journal interface {
	// Append returns once ev is durable (fsynced, committed). Concurrent
	// appends are allowed; each caller's events keep its order. Once the
	// lock is lost it fails with *LostError and writes nothing.
	Append(ev Event) error
	Close() error
}

// LostError: the lock was lost (another holder took the run over); the
// process must stop without touching any host.
type LostError struct {
	Run string
	Now *Holder // the new holder, when known
}

func (e *LostError) Error() string {
	msg := fmt.Sprintf("this process lost the lock of run %s (its lease was not renewed in time)", e.Run)
	if h := e.Now; h != nil {
		msg += fmt.Sprintf("; %s@%s (pid %d) holds it since %s", h.User, h.Host, h.PID, h.Since.Local().Format(time.RFC3339))
	}
	return msg + "; stopping without touching any host"
}

// Backup is one backup's index entry.
type Backup struct {
	ID       string          `json:"id"` // RUN/NAME
	Run      string          `json:"run"`
	Name     string          `json:"name"`
	Created  time.Time       `json:"created"`
	Manifest json.RawMessage `json:"manifest"`
}

// Me describes this process as a holder of run's lock.
func Me(run string) Holder { return journal.Me(run) }

// NewRunID returns a fresh, sortable run id.
func NewRunID(t time.Time) string { return journal.NewRunID(t) }

// ValidRunID reports whether s looks like a run id.
func ValidRunID(s string) bool { return journal.ValidRunID(s) }

// Latest returns the newest run of s.
func Latest(ctx context.Context, s Store) (string, error) {
	runs, err := s.Runs(ctx)
	if err != nil {
		return "", err
	}
	if len(runs) == 0 {
		return "", fmt.Errorf("no runs in %s", s.Where())
	}
	return runs[len(runs)-1], nil
}

// checkNode refuses node addresses that are not KIND.NAME.
func checkNode(node string) error {
	if node == "" || len(node) > 200 {
		return fmt.Errorf("%q is not a node address (like gate.go_primary)", node)
	}
	for _, c := range node {
		if c == '/' || c == '\\' || c < ' ' {
			return fmt.Errorf("%q is not a node address (like gate.go_primary)", node)
		}
	}
	if node[0] == '.' {
		return fmt.Errorf("%q is not a node address (like gate.go_primary)", node)
	}
	return nil
}

// CheckApproval validates Approve's arguments (shared by every store).
func CheckApproval(run, node string) error {
	if !ValidRunID(run) {
		return fmt.Errorf("%q is not a run id (like 20261128T101500-abcd)", run)
	}
	return checkNode(node)
}
