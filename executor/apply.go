package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// run is one apply, resume or rollback in progress.
type run struct {
	s    *session
	opts *Options
	cfg  *lang.Config
	id   string
	info lang.RunInfo
	j    *journal.Writer
	lock *journal.Lock

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

// ConfigChangedError refuses a resume whose configuration changed.
type ConfigChangedError struct{ Run, Was, Now string }

func (e *ConfigChangedError) Error() string {
	return fmt.Sprintf("the configuration changed since run %s started (hash %.12s, now %.12s); resume with -force to continue with the new one", e.Run, e.Was, e.Now)
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

// Apply starts a new run of opts.Config. The error is for runs that could
// not start (locked: *journal.LockedError); a run that started returns its
// Summary, whatever its outcome.
func Apply(ctx context.Context, opts Options) (*Summary, error) {
	now := time.Now().UTC()
	id := opts.RunID
	if id == "" {
		id = journal.NewRunID(now)
	}
	r, err := openRun(ctx, &opts, id, false)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.info = lang.RunInfo{ID: id, StartedAt: now.Truncate(time.Second)}
	me := journal.Me(id)
	abs := opts.Config.Dir
	d := evData{Run: id, ConfigHash: opts.Config.Hash, Dir: abs, Vars: publicVars(opts.Config),
		VarArgs: publicVarArgs(opts.Config, opts.Vars), VarFiles: opts.VarFiles, Version: opts.Version,
		PID: os.Getpid(), By: me.User + "@" + me.Host}
	if err := r.journal(journal.Event{Type: journal.RunStarted, TS: now}, d); err != nil {
		return nil, err
	}
	r.writeState("running")
	return r.walkAndFinish(ctx), nil
}

// ResumeOptions for Resume.
type ResumeOptions struct {
	Retry string // a node in flight to repeat although it is not known to be safe
	Force bool   // continue although the configuration changed
}

// Resume continues an interrupted run from its journal.
func Resume(ctx context.Context, opts Options, id string, ro ResumeOptions) (*Summary, error) {
	st, err := Replay(opts.StateDir, id)
	if err != nil {
		return nil, err
	}
	if st.Outcome != "" && st.Outcome != OutcomeInterrupted {
		return nil, &FinishedError{Run: id, Outcome: st.Outcome}
	}
	if st.ConfigHash != opts.Config.Hash && !ro.Force {
		return nil, &ConfigChangedError{Run: id, Was: st.ConfigHash, Now: opts.Config.Hash}
	}
	if ro.Retry != "" {
		if ns := st.Nodes[ro.Retry]; ns == nil || ns.State != StateRunning {
			return nil, fmt.Errorf("-retry %s: that node was not in flight in run %s", ro.Retry, id)
		}
	}
	r, err := openRun(ctx, &opts, id, true)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.st = st
	r.info = lang.RunInfo{ID: id, StartedAt: st.Started.Truncate(time.Second)}

	failed := false
	for _, addr := range st.Order {
		ns := st.Nodes[addr]
		switch ns.State {
		case StateFailed, StateUndone, StateUndoFailed:
			failed = true
		case StateRunning:
			if addr == ro.Retry {
				continue
			}
			if reason := r.unsafe(addr, ns); reason != "" {
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

// Rollback undoes every completed node of a finished, failed or
// interrupted run, newest first.
func Rollback(ctx context.Context, opts Options, id string) (*Summary, error) {
	st, err := Replay(opts.StateDir, id)
	if err != nil {
		return nil, err
	}
	if st.Outcome == OutcomeRolledBack {
		return nil, fmt.Errorf("run %s is already rolled back", id)
	}
	r, err := openRun(ctx, &opts, id, true)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.st = st
	r.rolledBackFrom = st.Outcome
	if r.rolledBackFrom == "" {
		r.rolledBackFrom = OutcomeInterrupted
	}
	r.info = lang.RunInfo{ID: id, StartedAt: st.Started.Truncate(time.Second)}
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

// openRun takes the lock, opens the journal and builds the session.
func openRun(ctx context.Context, opts *Options, id string, existing bool) (*run, error) {
	if opts.Config == nil || opts.Registry == nil {
		return nil, errors.New("executor: Config and Registry are required")
	}
	var lock *journal.Lock
	var err error
	if existing {
		lock, err = journal.TakeOver(opts.StateDir, id)
	} else {
		lock, err = journal.Acquire(opts.StateDir, id)
	}
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(journal.Path(opts.StateDir, id)); err == nil && !existing {
		lock.Release()
		return nil, fmt.Errorf("run %s already exists in %s", id, journal.RunsDir(opts.StateDir))
	}
	j, torn, err := journal.Create(journal.Path(opts.StateDir, id))
	if err != nil {
		lock.Release()
		return nil, err
	}
	r := &run{opts: opts, cfg: opts.Config, id: id, j: j, lock: lock, st: newRunState(), began: time.Now(), approvedSeen: map[string]bool{}}
	r.s = newSession(ctx, opts, id)
	r.s.r = r
	if torn != nil {
		r.s.emit(Event{Type: EvLog, Message: "journal: " + torn.String()})
	}
	return r, nil
}

// lastSyncs is the fsync count of the last closed run (benchmark only).
var lastSyncs uint64

func (r *run) close() {
	atomic.StoreUint64(&lastSyncs, r.j.Syncs())
	r.j.Close() // host connections belong to the caller's Hosts, which closes them
	r.lock.Release()
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
	if string(b) != "{}" {
		ev.Data = b
	}
	if err := r.j.Append(ev); err != nil {
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
		vev.Kind = "step"
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
	_ = journal.WriteState(r.opts.StateDir, journal.State{Run: r.id, Status: status, Dir: r.cfg.Dir,
		ConfigHash: r.cfg.Hash, PID: os.Getpid(), Started: r.info.StartedAt})
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

func (r *run) walkAndFinish(ctx context.Context) *Summary {
	werr := r.walk(ctx, r.visit)
	if ctx.Err() != nil {
		return r.finish(OutcomeInterrupted, ctx.Err())
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
	defer func() {
		// a module that panics fails its node like any error: the run rolls back
		if p := recover(); p != nil {
			if n := r.cfg.Nodes[addr]; n != nil {
				err = r.nodeFailed(n, nil, fmt.Errorf("internal error in %s (panic): %v", addr, p))
			} else {
				err = fmt.Errorf("internal error in %s (panic): %v", addr, p)
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
	n := r.cfg.Nodes[addr]
	if n == nil {
		return fmt.Errorf("executor: unknown node %s", addr)
	}
	ectx := r.scope(n)
	run, known, after, ds := evalWhen(n, ectx)
	if ds.HasErrors() {
		return r.nodeFailed(n, nil, diags.Err(ds))
	}
	if !known {
		return r.nodeFailed(n, nil, fmt.Errorf("when of %s is not known at apply time (waits for %s)", addr, strings.Join(after, ", ")))
	}
	if !run {
		if err := r.journal(journal.Event{Type: journal.NodeOutput, Node: addr}, mustOutputs(r.skippedOutputs(n))); err != nil {
			return r.nodeFailed(n, nil, err)
		}
		return r.journal(journal.Event{Type: journal.NodeSkipped, Node: addr}, evData{Kind: n.Kind, Phase: n.Phase, Skipped: "when is false"})
	}
	var hosts []string
	if n.Kind == lang.KindStep {
		var ds hcl.Diagnostics
		hosts, _, ds = stepHosts(n, ectx)
		if ds.HasErrors() {
			return r.nodeFailed(n, nil, diags.Err(ds))
		}
	}
	if err := r.journal(journal.Event{Type: journal.NodeStarted, Node: addr}, evData{Kind: n.Kind, Phase: n.Phase, Hosts: hosts}); err != nil {
		return r.nodeFailed(n, nil, err)
	}
	var (
		out     *modules.Outcome
		changed bool
	)
	switch n.Kind {
	case lang.KindStep:
		if err = r.interlock(n, hosts, nil); err == nil {
			changed, err = r.runStep(ctx, n, hosts)
		}
		out = &modules.Outcome{Outputs: map[string]cty.Value{"changed": cty.BoolVal(changed)}}
	case lang.KindCheck:
		err = r.runCheck(ctx, n)
		out = &modules.Outcome{Outputs: map[string]cty.Value{"passed": cty.True}}
	case lang.KindGate:
		var by string
		by, err = r.runGate(ctx, n)
		out = &modules.Outcome{Outputs: map[string]cty.Value{"approved_by": cty.StringVal(by)}}
	default:
		out, err = r.runModuleNode(ctx, n)
		if out != nil {
			changed = out.Changed
		}
	}
	if err != nil {
		var undo json.RawMessage
		if out != nil {
			undo = out.Undo
		}
		return r.nodeFailed(n, undo, err)
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
	return r.journal(journal.Event{Type: journal.NodeFinished, Node: addr}, evData{Changed: changed, State: out.Undo, Message: r.redact(out.Message)})
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

// skippedOutputs: a skipped node's outputs are null (a step's changed is false).
func (r *run) skippedOutputs(n *lang.Node) map[string]cty.Value {
	outs := map[string]cty.Value{}
	switch n.Kind {
	case lang.KindStep:
		outs["changed"] = cty.False
	case lang.KindCheck:
		outs["passed"] = cty.NullVal(cty.Bool)
	case lang.KindGate:
		outs["approved_by"] = cty.NullVal(cty.String)
	default:
		if m, ok := r.opts.Registry.Node(n.Kind); ok {
			for k, t := range m.Outputs() {
				outs[k] = cty.NullVal(t)
			}
		}
	}
	return outs
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

// runStep runs the step's actions top to bottom on each host, hosts in
// batches of batch_size (0: all at once).
func (r *run) runStep(ctx context.Context, n *lang.Node, hosts []string) (bool, error) {
	if len(hosts) == 0 {
		return false, fmt.Errorf("%s has no hosts", n.Addr)
	}
	batch := n.Step.BatchSize
	if batch <= 0 || batch > len(hosts) {
		batch = len(hosts)
	}
	var changed atomic.Bool
	for i := 0; i < len(hosts); i += batch {
		end := min(i+batch, len(hosts))
		errs := make([]error, end-i)
		var wg sync.WaitGroup
		for k, h := range hosts[i:end] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if p := recover(); p != nil { // a module's panic fails this host, not the process
						errs[k] = fmt.Errorf("host %q: internal error (panic): %v", h, p)
					}
				}()
				ch, err := r.runActions(ctx, n, h)
				if ch {
					changed.Store(true)
				}
				errs[k] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return changed.Load(), err
		}
	}
	return changed.Load(), nil
}

// runActions runs a step's actions on one host. Actions a resumed run
// already finished are not repeated.
func (r *run) runActions(ctx context.Context, n *lang.Node, host string) (bool, error) {
	changed := false
	lw := &logWriter{r: r, node: n.Addr, host: host}
	defer lw.flush()
	for i, blk := range n.Step.Actions {
		r.mu.Lock()
		prev := r.st.Nodes[n.Addr].action(host, i)
		r.mu.Unlock()
		if prev != nil && prev.Finished {
			changed = changed || prev.Changed
			continue
		}
		mod, ok := r.opts.Registry.Action(blk.Kind)
		if !ok {
			return changed, fmt.Errorf("%s: no module for action %q", n.Addr, blk.Kind)
		}
		mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
		if ds.HasErrors() {
			return changed, diags.Err(ds)
		}
		idx := journal.Idx(i)
		if err := r.journal(journal.Event{Type: journal.ActionStarted, Node: n.Addr, Host: host, Index: idx}, evData{Kind: blk.Kind}); err != nil {
			return changed, err
		}
		req := &modules.Request{Config: mc, Node: n.Addr, Host: host, Index: i, Env: r.env(n.Addr, host), Log: lw,
			Record: func(state json.RawMessage) error {
				return r.journal(journal.Event{Type: journal.UndoState, Node: n.Addr, Host: host, Index: journal.Idx(i)}, evData{State: state})
			}}
		out, err := mod.Apply(ctx, req)
		if err != nil {
			return changed, fmt.Errorf("%s%s #%d (%s): %w", hostPrefix(host, err), blk.Kind, i+1, rangeString(blk.DeclRange), err)
		}
		if out == nil {
			out = &modules.Outcome{}
		}
		changed = changed || out.Changed
		if err := r.journal(journal.Event{Type: journal.ActionFinished, Node: n.Addr, Host: host, Index: idx},
			evData{Kind: blk.Kind, Changed: out.Changed, Skipped: out.Skipped, Message: r.redact(out.Message), State: out.Undo}); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// hostPrefix names the host unless the error already does (transport errors do).
func hostPrefix(host string, err error) string {
	if strings.Contains(err.Error(), fmt.Sprintf("host %q", host)) {
		return ""
	}
	return fmt.Sprintf("host %q: ", host)
}

func rangeString(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d", rng.Filename, rng.Start.Line)
}

// runCheck runs a check's probes until all pass, at most retries+1 times.
func (r *run) runCheck(ctx context.Context, n *lang.Node) error {
	c := n.Check
	attempts := c.Retries + 1
	var last error
	for a := 1; a <= attempts; a++ {
		last = r.checkOnce(ctx, n)
		if last == nil {
			return nil
		}
		if a < attempts {
			r.s.emit(Event{Type: EvLog, Node: n.Addr, Message: r.redact(fmt.Sprintf("attempt %d of %d failed: %s; next in %s", a, attempts, diagText(last), c.Interval))})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.Interval):
			}
		}
	}
	if attempts > 1 {
		return fmt.Errorf("%s failed %d times, last: %w", n.Addr, attempts, last)
	}
	return fmt.Errorf("%s failed: %w", n.Addr, last)
}

func (r *run) checkOnce(ctx context.Context, n *lang.Node) error {
	var errs []error
	lw := &logWriter{r: r, node: n.Addr}
	defer lw.flush()
	for i, blk := range n.Check.Probes {
		mod, ok := r.opts.Registry.Probe(blk.Kind)
		if !ok {
			return fmt.Errorf("no module for probe %q", blk.Kind)
		}
		mc, ds := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, r.scope(n))
		if ds.HasErrors() {
			return diags.Err(ds)
		}
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		if n.Check.Timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, n.Check.Timeout)
		}
		err := protect(func() error {
			return mod.Check(pctx, &modules.Request{Config: mc, Node: n.Addr, Index: i, Env: r.env(n.Addr, ""), Log: lw})
		})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s #%d: %w", blk.Kind, i+1, err))
		}
	}
	return errors.Join(errs...)
}

// runGate waits for `upgrader approve RUN GATE` or a yes on the terminal.
func (r *run) runGate(ctx context.Context, n *lang.Node) (string, error) {
	if a, _ := journal.ReadApproval(r.opts.StateDir, r.id, n.Addr); a != nil {
		return a.By, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: a.By})
	}
	msg := ""
	if n.Gate != nil {
		msg = n.Gate.Message
	}
	r.s.emit(Event{Type: EvWaiting, Node: n.Addr, Message: fmt.Sprintf("%s\nTo approve: upgrader approve -state-dir %s %s %s", msg, r.opts.StateDir, r.id, n.Addr)})
	answers := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.opts.Prompt != nil {
		go func() {
			ok, err := r.opts.Prompt(pctx, fmt.Sprintf("%s: %s Approve?", n.Addr, msg))
			if err == nil && !ok {
				err = fmt.Errorf("%s: declined by the operator", n.Addr)
			}
			answers <- err
		}()
	}
	tick := time.NewTicker(r.opts.approvalPoll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-answers:
			if err != nil {
				return "", err
			}
			me := journal.Me(r.id)
			by := me.User + "@" + me.Host + " (terminal)"
			return by, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: by})
		case <-tick.C:
			if a, _ := journal.ReadApproval(r.opts.StateDir, r.id, n.Addr); a != nil {
				return a.By, r.journal(journal.Event{Type: journal.Approved, Node: n.Addr}, evData{By: a.By})
			}
		}
	}
}

// runModuleNode runs backup, schema_check, migrate, observe and other module kinds.
func (r *run) runModuleNode(ctx context.Context, n *lang.Node) (*modules.Outcome, error) {
	mod, ok := r.opts.Registry.Node(n.Kind)
	if !ok {
		return nil, fmt.Errorf("no module for node kind %q", n.Kind)
	}
	mc, ds := decode(r.cfg, n.Body, n.Spec, n.DeclRange, r.scope(n))
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	if ch, ok := mod.(modules.Changes); ok {
		hosts, dbs := ch.Changes(mc)
		if modules.GetBool(mc.Value, "backup_required", true) {
			if err := r.interlock(n, hosts, dbs); err != nil {
				return nil, err
			}
		}
	}
	lw := &logWriter{r: r, node: n.Addr}
	defer lw.flush()
	req := &modules.Request{Config: mc, Node: n.Addr, Index: -1, Env: r.env(n.Addr, ""), Log: lw,
		Record: func(state json.RawMessage) error {
			return r.journal(journal.Event{Type: journal.UndoState, Node: n.Addr}, evData{State: state})
		}}
	out, err := mod.Apply(ctx, req)
	if out == nil {
		out = &modules.Outcome{}
	}
	return out, err
}

// interlock refuses a node that changes hosts or databases no completed
// backup of this run protects (SPEC 2.1, at apply time).
func (r *run) interlock(n *lang.Node, hosts, dbs []string) error {
	if n.Kind == lang.KindStep && !n.Step.BackupRequired {
		return nil
	}
	covered := map[string]bool{}
	r.mu.Lock()
	var done []string
	for addr, ns := range r.st.Nodes {
		if ns.State == StateDone {
			done = append(done, addr)
		}
	}
	r.mu.Unlock()
	sort.Strings(done)
	for _, addr := range done {
		bn := r.cfg.Nodes[addr]
		if bn == nil || bn.Body == nil {
			continue
		}
		mod, ok := r.opts.Registry.Node(bn.Kind)
		if !ok {
			continue
		}
		p, ok := mod.(modules.Protects)
		if !ok {
			continue
		}
		mc, _ := decode(r.cfg, bn.Body, bn.Spec, bn.DeclRange, r.scope(bn))
		ph, pd := p.Protects(mc)
		for _, h := range ph {
			covered["host:"+h] = true
		}
		for _, d := range pd {
			covered["database:"+d] = true
		}
	}
	var missing []string
	for _, h := range hosts {
		if !covered["host:"+h] {
			missing = append(missing, "host "+h)
		}
	}
	for _, d := range dbs {
		if !covered["database:"+d] {
			missing = append(missing, "database "+d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s would change %s, but no backup of it completed earlier in this run: add a backup node that %s depends on, or set backup_required = false to waive it",
		n.Addr, strings.Join(missing, " and "), n.Addr)
}

// unsafe says why a node in flight at a crash may not be repeated ("" = safe).
func (r *run) unsafe(addr string, ns *NodeState) string {
	n := r.cfg.Nodes[addr]
	if n == nil {
		return "it is no longer in the configuration"
	}
	ectx := r.scope(n)
	switch n.Kind {
	case lang.KindCheck, lang.KindGate:
		return ""
	case lang.KindStep:
		for _, a := range ns.Actions {
			if a.Finished || a.Index >= len(n.Step.Actions) {
				continue
			}
			blk := n.Step.Actions[a.Index]
			mod, _ := r.opts.Registry.Action(blk.Kind)
			if rp, ok := mod.(modules.Repeatable); ok {
				mc, _ := decode(r.cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
				if rp.Safe(mc) {
					continue
				}
				return fmt.Sprintf("its %s action #%d on host %q is not safe to repeat (no creates, unless or idempotent = true)", blk.Kind, a.Index+1, a.Host)
			}
			switch blk.Kind {
			case "upload", "template", "release", "restore":
				continue
			}
			return fmt.Sprintf("its %s action #%d on host %q may not be safe to repeat", blk.Kind, a.Index+1, a.Host)
		}
		return ""
	default:
		mod, _ := r.opts.Registry.Node(n.Kind)
		if rp, ok := mod.(modules.Repeatable); ok {
			mc, _ := decode(r.cfg, n.Body, n.Spec, n.DeclRange, ectx)
			if rp.Safe(mc) {
				return ""
			}
			return fmt.Sprintf("%s says it is not safe to repeat", n.Kind)
		}
		switch n.Kind {
		case "backup", "schema_check", "observe":
			return ""
		}
		return fmt.Sprintf("a %s node is not known to be safe to repeat", n.Kind)
	}
}

// redact hides the values of sensitive variables in any text shown or journaled.
func (r *run) redact(s string) string { return redactWith(r.cfg, s) }

func redactWith(cfg *lang.Config, s string) string {
	for _, v := range cfg.Variables {
		if !v.Sensitive {
			continue
		}
		val, _ := v.Value.UnmarkDeep()
		if !val.IsKnown() || val.IsNull() || val.Type() != cty.String {
			continue
		}
		if sv := val.AsString(); len(sv) >= 3 {
			s = strings.ReplaceAll(s, sv, "(sensitive)")
		}
	}
	return s
}

// publicVars renders non-sensitive variable values for the journal.
func publicVars(cfg *lang.Config) map[string]string {
	out := map[string]string{}
	for name, v := range cfg.Variables {
		if v.Sensitive || isSensitive(v.Value) {
			continue
		}
		out[name] = FormatValue(v.Value)
	}
	return out
}

// publicVarArgs drops -var arguments of sensitive variables.
func publicVarArgs(cfg *lang.Config, args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v := cfg.Variables[strings.TrimSpace(name)]; v != nil && v.Sensitive {
			continue
		}
		out = append(out, a)
	}
	return out
}
