package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
)

// ConfigChangedError refuses a resume whose configuration changed.
type ConfigChangedError struct{ Run, Was, Now string }

func (e *ConfigChangedError) Error() string {
	return fmt.Sprintf("the configuration changed since run %s started (hash %.12s, now %.12s); resume with -force to continue with the new one", e.Run, e.Was, e.Now)
}

// SensitiveChangedError refuses to resume or roll back a run without the
// sensitive values it started with: its undo and its remaining nodes would
// run with other ones (a default, an empty value) without a word.
type SensitiveChangedError struct {
	Run, Verb       string
	Missing, Differ []string
}

func (e *SensitiveChangedError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%s not set now", strings.Join(e.Missing, ", ")))
	}
	if len(e.Differ) > 0 {
		parts = append(parts, fmt.Sprintf("%s set to another value", strings.Join(e.Differ, ", ")))
	}
	return fmt.Sprintf("run %s started with sensitive values that are missing or different: %s. Give each the value the run started with (-var NAME=VALUE, -var-file, or UPGRADER_VAR_NAME), or %s -force to continue with the values given now",
		e.Run, strings.Join(parts, "; "), e.Verb)
}

// sensitiveUnchanged compares the sensitive values given now with the
// digests the run journaled when it started.
func sensitiveUnchanged(st *RunState, opts *Options, verb string) error {
	if len(st.SensitiveDigests) == 0 {
		return nil
	}
	now, err := SensitiveDigests(opts.Config, opts.StateDir)
	if err != nil {
		return err
	}
	e := &SensitiveChangedError{Run: st.ID, Verb: verb}
	for name, was := range st.SensitiveDigests {
		switch is, ok := now[name]; {
		case !ok:
			e.Missing = append(e.Missing, "var."+name)
		case is != was:
			e.Differ = append(e.Differ, "var."+name)
		}
	}
	if len(e.Missing)+len(e.Differ) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	sort.Strings(e.Differ)
	return e
}

// UnsafeResumeError: a node was in flight when upgrader died and repeating it is not known to be safe.
type UnsafeResumeError struct {
	Run, Node, Reason string
}

func (e *UnsafeResumeError) Error() string {
	return fmt.Sprintf("%s was running when run %s stopped, and %s, so upgrader will not repeat it on its own.\nEither check the host, then repeat it: upgrader resume -retry %s %s\nor undo the run:                        upgrader rollback %s",
		e.Node, e.Run, e.Reason, e.Node, e.Run, e.Run)
}

// FinishedError: the run has ended; there is nothing to resume.
type FinishedError struct{ Run, Outcome string }

func (e *FinishedError) Error() string {
	if e.Outcome == OutcomeDone {
		return fmt.Sprintf("run %s is done; nothing to resume", e.Run)
	}
	return fmt.Sprintf("run %s ended as %s; nothing to resume (undo it with `upgrader rollback %s`)", e.Run, e.Outcome, e.Run)
}

// ResumeOptions for Resume.
type ResumeOptions struct {
	Retry string // a node in flight to repeat although it is not known to be safe
	Force bool   // continue although the configuration changed
}

// takeOver takes the lock of an existing run and only then reads its
// journal, so that no other process appends to it between the read and the
// run's first event. check refuses a run that cannot continue (the lock is
// released then).
func takeOver(ctx context.Context, opts *Options, id string, check func(*RunState) error) (*run, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	lock, err := opts.store().TakeOver(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := ReplayFrom(ctx, opts.store(), id)
	if err == nil {
		err = check(st)
	}
	if err != nil {
		lock.Release()
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	r, err := openRun(ctx, cancel, opts, id, lock, st, false)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	r.info = lang.RunInfo{ID: id, StartedAt: st.Started.Truncate(time.Second)}
	return r, nil
}

// Resume continues an interrupted run from its journal.
func Resume(ctx context.Context, opts Options, id string, ro ResumeOptions) (*Summary, error) {
	var failed bool
	var r *run
	r, err := takeOver(ctx, &opts, id, func(st *RunState) error {
		if st.Outcome != "" && st.Outcome != OutcomeInterrupted {
			return &FinishedError{Run: id, Outcome: st.Outcome}
		}
		if st.ConfigHash != opts.Config.Hash && !ro.Force {
			return &ConfigChangedError{Run: id, Was: st.ConfigHash, Now: opts.Config.Hash}
		}
		if err := sensitiveUnchanged(st, &opts, "resume"); err != nil && !ro.Force {
			return err
		}
		if ro.Retry != "" {
			if ns := st.Nodes[ro.Retry]; ns == nil || ns.State != StateRunning {
				return fmt.Errorf("-retry %s: that node was not in flight in run %s", ro.Retry, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer r.close()
	st := r.st
	for _, addr := range st.Order {
		ns := st.Nodes[addr]
		switch ns.State {
		case StateFailed, StateUndone, StateUndoFailed:
			failed = true
		case StateRunning:
			if addr == ro.Retry {
				continue
			}
			if reason := r.repeatUnsafe(addr, ns); reason != "" {
				return nil, &UnsafeResumeError{Run: id, Node: addr, Reason: reason}
			}
		}
	}
	if err := r.journal(journal.Event{Type: journal.RunResumed}, evData{Retry: ro.Retry, PID: os.Getpid()}); err != nil {
		return nil, err
	}
	r.writeState("running")
	if failed {
		// upgrader died during a rollback: finish the rollback.
		for _, addr := range st.Order {
			if st.Nodes[addr].State == StateFailed {
				r.failNode, r.failErr = addr, errors.New(st.Nodes[addr].Error)
				break
			}
		}
		if r.failNode == "" {
			r.failNode = st.Order[len(st.Order)-1]
			r.failErr = errors.New("rollback interrupted")
		}
		return r.recoverAndFinish(ctx), nil
	}
	return r.walkAndFinish(ctx), nil
}

// repeatUnsafe says why a node in flight at a crash may not be repeated ("" = safe).
func (r *run) repeatUnsafe(addr string, ns *NodeState) string {
	gn := r.node(addr)
	if gn == nil {
		return "it is no longer in the configuration"
	}
	return gn.repeatUnsafe(r, ns)
}

// Rollback undoes every completed node of a finished, failed or
// interrupted run, newest first.
func Rollback(ctx context.Context, opts Options, id string) (*Summary, error) {
	r, err := takeOver(ctx, &opts, id, func(st *RunState) error {
		if st.Outcome == OutcomeRolledBack {
			return fmt.Errorf("run %s is already rolled back", id)
		}
		if err := sensitiveUnchanged(st, &opts, "rollback"); err != nil && !opts.Force {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.rolledBackFrom = r.st.Outcome
	if r.rolledBackFrom == "" {
		r.rolledBackFrom = OutcomeInterrupted
	}
	if err := r.journal(journal.Event{Type: journal.RunResumed}, evData{Via: "rollback", PID: os.Getpid()}); err != nil {
		return nil, err
	}
	r.writeState("rolling_back")
	r.s.emit(Event{Type: EvRollbackStarted, Message: "rolling back the whole run, newest first"})
	outcome := r.undoAll(ctx, func(*NodeState) bool { return true })
	if outcome == "" {
		outcome = OutcomeRolledBack
	}
	return r.finish(outcome, nil), nil
}
