package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// This file is a run's lifecycle: start (Apply; resume.go for Resume and
// Rollback), the walk visiting each node through its graphNode, the
// journal, and the end (finish, the summary).

// run is one apply, resume or rollback in progress.
type run struct {
	s    *session
	opts *Options
	cfg  *lang.Config
	id   string
	info lang.RunInfo
	j    runstore.Journal
	lock runstore.Lock
	// cancel stops the run when its lock is lost (fencing): nothing more
	// may touch a host, not even a rollback.
	cancel context.CancelCauseFunc
	lost   atomic.Bool

	mu       sync.Mutex
	st       *RunState
	failNode string
	failErr  error
	stopping atomic.Bool
	notes    []string
	began    time.Time
	// rolledBackFrom: the outcome of a run `upgrader rollback` undoes
	rolledBackFrom string

	approvedSeen map[string]bool // approvals already journaled (Env.Approved)
}

// errNotStarted is returned for a node the walk reached after a failure.
var errNotStarted = errors.New("not started: an earlier node failed")

// Apply starts a new run of opts.Config. The error is for runs that could
// not start (locked: *journal.LockedError); a run that started returns its
// Summary, whatever its outcome.
func Apply(ctx context.Context, opts Options) (*Summary, error) {
	now := time.Now().UTC()
	id := opts.RunID
	if id == "" {
		id = journal.NewRunID(now)
	}
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	lock, err := opts.store().Lock(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r, err := openRun(ctx, cancel, &opts, id, lock, newRunState(), true)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.info = lang.RunInfo{ID: id, StartedAt: now.Truncate(time.Second)}
	me := journal.Me(id)
	abs := opts.Config.Dir
	digests, err := SensitiveDigests(opts.Config, opts.StateDir)
	if err != nil {
		return nil, err
	}
	d := evData{Run: id, ConfigHash: opts.Config.Hash, Dir: abs, Vars: publicVars(opts.Config),
		VarArgs: publicVarArgs(opts.Config, opts.Vars), VarFiles: opts.VarFiles, Version: opts.Version,
		SensitiveDigests: digests, PID: os.Getpid(), By: me.User + "@" + me.Host}
	if err := r.journal(journal.Event{Type: journal.RunStarted, TS: now}, d); err != nil {
		return nil, err
	}
	r.writeState("running")
	return r.walkAndFinish(ctx), nil
}

func checkOptions(opts *Options) error {
	if opts.Config == nil || opts.Registry == nil {
		return errors.New("executor: Config and Registry are required")
	}
	return nil
}

// openRun opens the journal of a run whose lock is held (and released by
// close, or here on failure) and builds the session: fresh starts a new
// run's journal, else it continues one. ctx is cancelled (cancel) when the
// lock is lost.
func openRun(ctx context.Context, cancel context.CancelCauseFunc, opts *Options, id string, lock runstore.Lock, st *RunState, fresh bool) (*run, error) {
	var j runstore.Journal
	var torn *runstore.Torn
	var err error
	if fresh {
		j, err = lock.Create(ctx)
	} else {
		j, torn, err = lock.Open(ctx)
	}
	if err != nil {
		lock.Release()
		return nil, err
	}
	r := &run{opts: opts, cfg: opts.Config, id: id, j: j, lock: lock, cancel: cancel, st: st, began: time.Now(), approvedSeen: map[string]bool{}}
	r.s = newSession(ctx, opts, id)
	r.s.r = r
	if torn != nil {
		r.s.emit(Event{Type: EvLog, Message: "journal: " + torn.String()})
	}
	go func() {
		select {
		case <-lock.Lost():
			e := &runstore.LostError{Run: id}
			hctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
			if h, _, err := opts.store().Holder(hctx); err == nil && h != nil && h.Epoch != lock.Holder().Epoch {
				e.Now = h
			}
			stop()
			r.lostLock(e)
		case <-ctx.Done():
		}
	}()
	return r, nil
}

// lostLock stops the run: another process may own it now.
func (r *run) lostLock(err error) {
	if r.lost.CompareAndSwap(false, true) {
		r.stopping.Store(true)
		r.cancel(err)
	}
}

// lastSyncs is the fsync count of the last closed run (benchmark only).
var lastSyncs uint64

func (r *run) close() {
	if w, ok := r.j.(interface{ Syncs() uint64 }); ok {
		atomic.StoreUint64(&lastSyncs, w.Syncs())
	}
	r.j.Close() // host connections belong to the caller's Hosts, which closes them
	r.lock.Release()
	r.cancel(nil)
}

// journal appends an event (fsynced), folds it into the state and shows it.
func (r *run) journal(ev journal.Event, d evData) error {
	if ev.TS.IsZero() {
		ev.TS = time.Now().UTC()
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	b = redactJSON(secretsOf(r.cfg), b)
	if string(b) != "{}" {
		ev.Data = b
	}
	if err := r.j.Append(ev); err != nil {
		var lost *runstore.LostError
		if errors.As(err, &lost) {
			r.lostLock(err)
		}
		return err
	}
	r.mu.Lock()
	err = r.st.Apply(ev)
	kind := ""
	if ns := r.st.Nodes[ev.Node]; ns != nil {
		kind = ns.Kind
	}
	r.mu.Unlock()
	if ev.Type == journal.Checkpoint || ev.Type == journal.UndoState {
		return err // internal: not shown
	}
	vev := Event{TS: ev.TS, Type: ev.Type, Node: ev.Node, Kind: kind, Phase: d.Phase, Host: ev.Host, Index: ev.Index,
		Action: d.Kind, Message: d.Message, Error: d.Error, Changed: d.Changed, Skipped: d.Skipped, Outcome: d.Outcome}
	if ev.Type == journal.ActionStarted || ev.Type == journal.ActionFinished {
		vev.Kind = lang.KindStep
	}
	if ev.Type == journal.NodeOutput {
		vev.Outputs = map[string]any{}
		for k, raw := range d.Outputs {
			vev.Outputs[k] = raw
		}
		for _, k := range d.Sensitive {
			vev.Outputs[k] = "(sensitive)"
		}
	}
	if ev.Type == journal.RunStarted || ev.Type == journal.RunResumed {
		vev.Message = d.Via
	}
	if ev.Type == EvEscalation {
		vev.Message = fmt.Sprintf("checks %s: failing %s; rollback %s", strings.Join(d.Checks, ", "), strings.Join(d.Failing, ", "), d.Rollback)
	}
	r.s.emit(vev)
	return err
}

func (r *run) writeState(status string) {
	if r.lost.Load() {
		return // the run's new holder keeps its summary
	}
	h := r.lock.Holder()
	_ = r.opts.store().PutSummary(r.s.ctx, runstore.Summary{Run: r.id, Status: status, Dir: r.cfg.Dir,
		ConfigHash: r.cfg.Hash, PID: os.Getpid(), By: h.User + "@" + h.Host, Started: r.info.StartedAt})
}

// scope is the evaluation scope of node n's expressions. Only the outputs
// of what n depends on are put in: every node its expressions reference is
// among them, and a scope of the whole run would cost O(nodes) per node.
func (r *run) scope(n *lang.Node) *hcl.EvalContext {
	r.mu.Lock()
	outs := make(map[string]map[string]cty.Value, len(n.DependsOn))
	for _, d := range n.DependsOn {
		if v, ok := r.st.Outputs[d]; ok {
			outs[d] = v
		}
	}
	r.mu.Unlock()
	return evalScope(r.cfg, r.info, outs)
}

func (r *run) fail(addr string, err error) {
	r.mu.Lock()
	if r.failNode == "" {
		r.failNode, r.failErr = addr, err
	}
	r.mu.Unlock()
	r.stopping.Store(true)
}

// node is the graphNode of the configuration's node addr (nil: none).
func (r *run) node(addr string) graphNode {
	n := r.cfg.Nodes[addr]
	if n == nil {
		return nil
	}
	return nodeFor(r.opts.Registry, n)
}

func (r *run) walkAndFinish(ctx context.Context) *Summary {
	werr := r.walk(ctx, r.visit)
	if ctx.Err() != nil {
		return r.finish(OutcomeInterrupted, context.Cause(ctx))
	}
	if r.failNode == "" && werr != nil && !errors.Is(werr, errNotStarted) {
		// the walk itself failed (a cycle validate would have caught): no node ran
		return r.finish(OutcomeFailed, werr)
	}
	if r.failNode == "" {
		return r.finish(OutcomeDone, nil)
	}
	return r.recoverAndFinish(ctx)
}

// visit runs one node (the walker calls it when every dependency is done).
func (r *run) visit(ctx context.Context, addr string) (err error) {
	if r.stopping.Load() {
		return errNotStarted
	}
	n := r.cfg.Nodes[addr]
	defer func() {
		// a module that panics fails its node like any error: the run rolls back
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in %s (panic): %v", addr, p)
			if n != nil {
				err = r.nodeFailed(n, nil, err)
			}
		}
	}()
	r.mu.Lock()
	var state string
	if ns := r.st.Nodes[addr]; ns != nil {
		state = ns.State
	}
	r.mu.Unlock()
	if state == StateDone || state == StateSkipped {
		return nil // resumed run: already done
	}
	if n == nil {
		return fmt.Errorf("executor: unknown node %s", addr)
	}
	gn := nodeFor(r.opts.Registry, n)
	ectx := r.scope(n)
	run, known, after, ds := evalWhen(n, ectx)
	if ds.HasErrors() {
		return r.nodeFailed(n, nil, diags.Err(ds))
	}
	if !known {
		return r.nodeFailed(n, nil, fmt.Errorf("when of %s is not known at apply time (waits for %s)", addr, strings.Join(after, ", ")))
	}
	if !run {
		if err := r.journal(journal.Event{Type: journal.NodeOutput, Node: addr}, mustOutputs(gn.skippedOutputs())); err != nil {
			return r.nodeFailed(n, nil, err)
		}
		return r.journal(journal.Event{Type: journal.NodeSkipped, Node: addr}, evData{Kind: n.Kind, Phase: n.Phase, Skipped: "when is false"})
	}
	hosts, ds := gn.hosts(ectx)
	if ds.HasErrors() {
		return r.nodeFailed(n, nil, diags.Err(ds))
	}
	if err := r.journal(journal.Event{Type: journal.NodeStarted, Node: addr}, evData{Kind: n.Kind, Phase: n.Phase, Hosts: hosts}); err != nil {
		return r.nodeFailed(n, nil, err)
	}
	out, err := gn.apply(ctx, r, hosts)
	if out == nil {
		out = &modules.Outcome{}
	}
	if err != nil {
		return r.nodeFailed(n, out.Undo, err)
	}
	if len(out.Outputs) > 0 {
		d, err := encodeOutputs(out.Outputs)
		if err != nil {
			return r.nodeFailed(n, out.Undo, err)
		}
		if err := r.journal(journal.Event{Type: journal.NodeOutput, Node: addr}, d); err != nil {
			return r.nodeFailed(n, out.Undo, err)
		}
	}
	return r.journal(journal.Event{Type: journal.NodeFinished, Node: addr}, evData{Changed: out.Changed, State: out.Undo, Message: r.redact(out.Message)})
}

func mustOutputs(outs map[string]cty.Value) evData {
	d, _ := encodeOutputs(outs)
	return d
}

func (r *run) nodeFailed(n *lang.Node, undo json.RawMessage, err error) error {
	if r.s.ctx.Err() != nil {
		// interrupted, not failed: the node stays in flight for resume to judge
		r.stopping.Store(true)
		return err
	}
	msg := r.redact(diagText(err))
	_ = r.journal(journal.Event{Type: journal.NodeFailed, Node: n.Addr}, evData{Error: msg, State: undo})
	r.fail(n.Addr, err)
	return err
}

// diagText renders an error (diagnostics included) on one or a few lines.
func diagText(err error) string {
	var de *diags.DiagError
	if errors.As(err, &de) {
		var parts []string
		for _, d := range de.Diags {
			s := d.Summary
			if d.Detail != "" {
				s += ": " + d.Detail
			}
			if d.Subject != nil {
				s = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, s)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// onHost names host in an action's error once, as a modules.HostError
// ("" : a module node's rollback block, whose actions name their own host).
func onHost(host string, err error) error {
	if host == "" {
		return err
	}
	return modules.OnHost(host, err)
}

func rangeString(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d", rng.Filename, rng.Start.Line)
}

// protect turns a panic in f (a module's check or undo) into an error.
func protect(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (panic): %v", p)
		}
	}()
	return f()
}

// env returns the modules.Env for one call.
func (r *run) env(node, host string) *env {
	return &env{s: r.s, node: node, host: host}
}

// logWriter turns module output into log events, one per line.
type logWriter struct {
	r          *run
	node, host string
	mu         sync.Mutex
	buf        []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.r.s.emit(Event{Type: EvLog, Node: w.node, Host: w.host, Message: w.r.redact(line)})
	}
	if len(w.buf) > 64<<10 {
		w.r.s.emit(Event{Type: EvLog, Node: w.node, Host: w.host, Message: w.r.redact(string(w.buf))})
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.r.s.emit(Event{Type: EvLog, Node: w.node, Host: w.host, Message: w.r.redact(string(w.buf))})
		w.buf = nil
	}
}

// finish journals run_finished and builds the summary.
func (r *run) finish(outcome string, cause error) *Summary {
	errText := ""
	if cause != nil {
		errText = r.redact(diagText(cause))
	}
	r.mu.Lock()
	left := append([]string(nil), r.st.Left...)
	notes := append([]string(nil), r.notes...)
	r.mu.Unlock()
	if outcome != OutcomeInterrupted {
		_ = r.journal(journal.Event{Type: journal.RunFinished}, evData{Outcome: outcome, Error: errText, Left: left})
	}
	r.writeState(outcome)
	sum := r.summary(outcome, errText, left, notes)
	r.s.emit(Event{Type: "summary", Outcome: outcome, Summary: sum})
	return sum
}

func (r *run) summary(outcome, errText string, left, notes []string) *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := &Summary{Run: r.id, Outcome: outcome, ExitCode: ExitCode(outcome), Failed: r.failNode, Error: errText,
		Elapsed: time.Since(r.began).Seconds(), Left: left, Notes: notes, RolledBackFrom: r.rolledBackFrom}
	sum.Nodes = nodeSummaries(r.cfg, r.st)
	return sum
}

// nodeSummaries lists every node: those that ran in the order they started, then the rest.
func nodeSummaries(cfg *lang.Config, st *RunState) []NodeSummary {
	var out []NodeSummary
	seen := map[string]bool{}
	add := func(addr string) {
		if seen[addr] {
			return
		}
		seen[addr] = true
		ns := st.Nodes[addr]
		s := NodeSummary{Node: addr, State: StatePending}
		if n := cfg.Nodes[addr]; n != nil {
			s.Kind, s.Phase = n.Kind, n.Phase
		}
		if ns != nil {
			s.State, s.Started, s.Finished, s.Error, s.Reason, s.Changed, s.Hosts = ns.State, ns.Started, ns.Finished, ns.Error, ns.Reason, ns.Changed, ns.Hosts
			if s.Kind == "" {
				s.Kind, s.Phase = ns.Kind, ns.Phase
			}
			if !ns.Finished.IsZero() && !ns.Started.IsZero() {
				s.Elapsed = ns.Finished.Sub(ns.Started).Seconds()
			}
		}
		out = append(out, s)
	}
	for _, a := range st.Order {
		add(a)
	}
	for _, a := range sortedNodes(cfg) {
		add(a)
	}
	return out
}
