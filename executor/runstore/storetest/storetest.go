// Package storetest is the conformance suite every runstore.Store must
// pass (modelled on restic's backend test suite): replay order, durability
// across handles, torn writes, concurrent appenders, lock contention and
// takeover, fencing, approvals, summaries, samples and the backup index.
//
//	storetest.Suite{New: ..., Reopen: ..., Expire: ...}.Run(t)
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

// Suite describes the store under test.
type Suite struct {
	// New returns a fresh, empty store (closed by the suite).
	New func(t *testing.T) runstore.Store
	// Reopen returns another handle on the same store, as a second
	// process (or machine) would have it (closed by the suite).
	Reopen func(t *testing.T, s runstore.Store) runstore.Store
	// Tear leaves partial bytes of one more event at the end of run's
	// journal, as a crash mid-append would. Nil: appends are atomic
	// (transactions) and cannot be torn.
	Tear func(t *testing.T, s runstore.Store, run string, partial []byte)
	// Expire makes the current holder stale, as if its process died (local:
	// a dead pid; a lease: not renewed past its duration).
	Expire func(t *testing.T, s runstore.Store)
	// Fenced: a holder that lost its lock can no longer append (leases).
	Fenced bool
}

// Run runs every test of the suite as a subtest of t.
func (s Suite) Run(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ReplayOrder", s.testReplayOrder},
		{"Durable", s.testDurable},
		{"CreateTwice", s.testCreateTwice},
		{"EmptyRun", s.testEmptyRun},
		{"TornWrite", s.testTornWrite},
		{"ConcurrentAppenders", s.testConcurrentAppenders},
		{"LockContention", s.testLockContention},
		{"TakeOver", s.testTakeOver},
		{"Unlock", s.testUnlock},
		{"Approvals", s.testApprovals},
		{"Summary", s.testSummary},
		{"Samples", s.testSamples},
		{"Backups", s.testBackups},
	} {
		t.Run(tc.name, tc.fn)
	}
}

func (s Suite) store(t *testing.T) runstore.Store {
	t.Helper()
	st := s.New(t)
	t.Cleanup(func() { st.Close() })
	return st
}

func (s Suite) reopen(t *testing.T, st runstore.Store) runstore.Store {
	t.Helper()
	o := s.Reopen(t, st)
	t.Cleanup(func() { o.Close() })
	return o
}

var ctx = context.Background()

// run ids: distinct, valid, in order.
func runID(i int) string {
	return fmt.Sprintf("20261128T10%02d%02d-%04x", i/60%60, i%60, i)
}

func event(typ, node string, i int) runstore.Event {
	return runstore.Event{TS: time.Date(2026, 11, 28, 10, 0, 0, i*1000, time.UTC), Type: typ, Node: node, Index: journal.Idx(i),
		Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"s":"x\ny \"q\" é"}`, i))}
}

// begin takes the lock for a new run and starts its journal with run_started.
func begin(t *testing.T, st runstore.Store, run string) (runstore.Lock, runstore.Journal) {
	t.Helper()
	l, err := st.Lock(ctx, run)
	if err != nil {
		t.Fatalf("Lock(%s): %v", run, err)
	}
	j, err := l.Create(ctx)
	if err != nil {
		t.Fatalf("Create(%s): %v", run, err)
	}
	if err := j.Append(runstore.Event{Type: journal.RunStarted, Data: json.RawMessage(`{"run":"` + run + `"}`)}); err != nil {
		t.Fatal(err)
	}
	return l, j
}

func (s Suite) testReplayOrder(t *testing.T) {
	st := s.store(t)
	if runs, err := st.Runs(ctx); err != nil || len(runs) != 0 {
		t.Fatalf("a new store has runs %v (%v)", runs, err)
	}
	if _, _, err := st.Events(ctx, runID(9)); !errors.Is(err, runstore.ErrNoRun) {
		t.Fatalf("Events of an unknown run: %v, want ErrNoRun", err)
	}
	var want []runstore.Event
	for r := 0; r < 2; r++ {
		run := runID(r)
		l, j := begin(t, st, run)
		for i := 0; i < 300; i++ {
			ev := event(journal.NodeStarted, fmt.Sprintf("step.n%d", i), i)
			if r == 1 {
				want = append(want, ev)
			}
			if err := j.Append(ev); err != nil {
				t.Fatal(err)
			}
		}
		j.Close()
		l.Release()
	}
	got, torn, err := st.Events(ctx, runID(1))
	if err != nil || torn != nil {
		t.Fatalf("Events: %v, torn %v", err, torn)
	}
	if len(got) != len(want)+1 || got[0].Type != journal.RunStarted || got[0].TS.IsZero() {
		t.Fatalf("got %d events (first %+v), want run_started + %d", len(got), got[0], len(want))
	}
	for i, w := range want {
		g := got[i+1]
		if g.Type != w.Type || g.Node != w.Node || !g.TS.Equal(w.TS) || g.Index == nil || *g.Index != *w.Index || !jsonEqual(g.Data, w.Data) {
			t.Fatalf("event %d = %+v (data %s), want %+v (data %s)", i+1, g, g.Data, w, w.Data)
		}
	}
	runs, err := st.Runs(ctx)
	if err != nil || strings.Join(runs, ",") != runID(0)+","+runID(1) {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	if last, err := runstore.Latest(ctx, st); err != nil || last != runID(1) {
		t.Fatalf("Latest = %s, %v", last, err)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// An event is durable once Append returns: another handle sees it before
// the writer closes anything.
func (s Suite) testDurable(t *testing.T) {
	st := s.store(t)
	other := s.reopen(t, st)
	l, j := begin(t, st, runID(1))
	defer l.Release()
	defer j.Close()
	for i := 0; i < 20; i++ {
		if err := j.Append(event(journal.Checkpoint, "observe.soak", i)); err != nil {
			t.Fatal(err)
		}
		evs, _, err := other.Events(ctx, runID(1))
		if err != nil || len(evs) != i+2 {
			t.Fatalf("after %d appends another handle sees %d events (%v)", i+1, len(evs), err)
		}
	}
}

func (s Suite) testCreateTwice(t *testing.T) {
	st := s.store(t)
	l, j := begin(t, st, runID(1))
	j.Close()
	l.Release()
	l2, err := st.Lock(ctx, runID(1))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if _, err := l2.Create(ctx); err == nil {
		t.Fatal("Create of a run that has a journal succeeded")
	}
	j2, torn, err := l2.Open(ctx)
	if err != nil || torn != nil {
		t.Fatalf("Open: %v %v", err, torn)
	}
	if err := j2.Append(runstore.Event{Type: journal.RunResumed}); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	evs, _, _ := st.Events(ctx, runID(1))
	if len(evs) != 2 || evs[1].Type != journal.RunResumed {
		t.Fatalf("after Open+Append: %+v", evs)
	}
	l3, err := s.reopen(t, st).Lock(ctx, runID(2))
	if err == nil {
		l3.Release()
		t.Fatal("a second handle took the lock a first one holds")
	}
	l2.Release()
	l4, err := st.Lock(ctx, runID(3))
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Release()
	if _, _, err := l4.Open(ctx); !errors.Is(err, runstore.ErrNoRun) {
		t.Fatalf("Open of a run that never started: %v, want ErrNoRun", err)
	}
}

// Issue 13.12: a run whose journal holds nothing is refused, not shown as
// started at the zero time.
func (s Suite) testEmptyRun(t *testing.T) {
	st := s.store(t)
	l, err := st.Lock(ctx, runID(1))
	if err != nil {
		t.Fatal(err)
	}
	j, err := l.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	l.Release()
	var ee *runstore.EmptyError
	if _, _, err := st.Events(ctx, runID(1)); !errors.As(err, &ee) {
		t.Fatalf("Events of an empty journal: %v, want *EmptyError", err)
	}
}

func (s Suite) testTornWrite(t *testing.T) {
	if s.Tear == nil {
		t.Skip("appends of this store are atomic")
	}
	st := s.store(t)
	l, j := begin(t, st, runID(1))
	j.Append(event(journal.NodeStarted, "step.a", 1))
	j.Close()
	l.Release()
	s.Tear(t, st, runID(1), []byte(`{"ts":"2026-11-28T10:00:00Z","type":"node_fin`))
	evs, torn, err := st.Events(ctx, runID(1))
	if err != nil || torn == nil || len(evs) != 2 {
		t.Fatalf("torn journal: %d events, torn %v, %v", len(evs), torn, err)
	}
	l2, err := st.TakeOver(ctx, runID(1))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	j2, torn2, err := l2.Open(ctx)
	if err != nil || torn2 == nil {
		t.Fatalf("Open did not report the torn event: %v %v", err, torn2)
	}
	if err := j2.Append(event(journal.NodeFinished, "step.a", 2)); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	evs, torn, err = st.Events(ctx, runID(1))
	if err != nil || torn != nil || len(evs) != 3 || evs[2].Type != journal.NodeFinished {
		t.Fatalf("after repair: %+v torn %v %v", evs, torn, err)
	}
}

// Eight appenders at once (parallel nodes): every event lands once and each
// appender's events stay in its order.
func (s Suite) testConcurrentAppenders(t *testing.T) {
	st := s.store(t)
	l, j := begin(t, st, runID(1))
	defer l.Release()
	const g, n = 8, 40
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := j.Append(runstore.Event{Type: journal.ActionStarted, Node: fmt.Sprintf("step.w%d", w), Index: journal.Idx(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	j.Close()
	evs, _, err := st.Events(ctx, runID(1))
	if err != nil || len(evs) != g*n+1 {
		t.Fatalf("%d events, want %d (%v)", len(evs), g*n+1, err)
	}
	next := map[string]int{}
	for _, ev := range evs[1:] {
		if *ev.Index != next[ev.Node] {
			t.Fatalf("%s: event %d came before %d", ev.Node, *ev.Index, next[ev.Node])
		}
		next[ev.Node]++
	}
}

// Racing takers on several handles: exactly one holds the lock, the others
// get a *LockedError naming it.
func (s Suite) testLockContention(t *testing.T) {
	st := s.store(t)
	handles := []runstore.Store{st, s.reopen(t, st), s.reopen(t, st), st}
	for round := 0; round < 5; round++ {
		var won atomic.Int32
		var holder atomic.Pointer[runstore.Lock]
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, h := range handles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l, err := h.Lock(ctx, runID(round*10+i))
				var le *runstore.LockedError
				switch {
				case err == nil:
					won.Add(1)
					holder.Store(&l)
				case errors.As(err, &le):
					if le.Holder.Run == "" || le.Holder.PID == 0 {
						t.Errorf("LockedError names no holder: %v", err)
					}
				default:
					t.Errorf("Lock: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("round %d: %d holders, want exactly 1", round, won.Load())
		}
		l := *holder.Load()
		h, stale, err := st.Holder(ctx)
		if err != nil || h == nil || stale || h.Run != l.Holder().Run {
			t.Fatalf("Holder = %+v stale %v (%v), want %s", h, stale, err, l.Holder().Run)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if h, _, _ := st.Holder(ctx); h != nil {
			t.Fatalf("released lock still held by %+v", h)
		}
	}
}

// A holder that died: nobody may take its lock for another run, racing
// resumers of its run end with exactly one holder, and (leases) the old
// holder's appends are refused from then on.
func (s Suite) testTakeOver(t *testing.T) {
	if s.Expire == nil {
		t.Skip("no way to make a holder stale")
	}
	st := s.store(t)
	l, j := begin(t, st, runID(1))
	if _, err := st.TakeOver(ctx, runID(1)); err == nil {
		t.Fatal("took over a live holder")
	}
	s.Expire(t, st)
	if _, stale, _ := st.Holder(ctx); !stale {
		t.Fatal("the expired holder is not stale")
	}
	if _, err := st.Lock(ctx, runID(2)); err == nil {
		t.Fatal("a new run took a stale lock held by another run")
	}
	if _, err := st.TakeOver(ctx, runID(2)); err == nil {
		t.Fatal("another run took over a stale lock")
	}
	handles := []runstore.Store{st, s.reopen(t, st), s.reopen(t, st), s.reopen(t, st)}
	var won atomic.Int32
	var newer atomic.Pointer[runstore.Lock]
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			nl, err := h.TakeOver(ctx, runID(1))
			if err == nil {
				won.Add(1)
				newer.Store(&nl)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d resumers took the run over, want exactly 1", won.Load())
	}
	nl := *newer.Load()
	defer nl.Release()
	if s.Fenced {
		select {
		case <-l.Lost():
		case <-time.After(30 * time.Second):
			t.Fatal("the old holder was not told it lost the lock")
		}
		err := j.Append(runstore.Event{Type: journal.NodeStarted, Node: "step.late"})
		var lost *runstore.LostError
		if !errors.As(err, &lost) {
			t.Fatalf("the old holder appended after losing the lock: %v", err)
		}
		evs, _, _ := st.Events(ctx, runID(1))
		for _, ev := range evs {
			if ev.Node == "step.late" {
				t.Fatal("the fenced event reached the journal")
			}
		}
		// its Release must not free the new holder's lock
		l.Release()
		if h, _, _ := st.Holder(ctx); h == nil || h.PID != nl.Holder().PID || h.Epoch != nl.Holder().Epoch {
			t.Fatalf("after the old holder's Release the lock is %+v", h)
		}
	}
	j.Close()
	nj, _, err := nl.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := nj.Append(runstore.Event{Type: journal.RunResumed}); err != nil {
		t.Fatal(err)
	}
	nj.Close()
}

func (s Suite) testUnlock(t *testing.T) {
	st := s.store(t)
	if _, err := st.Unlock(ctx, false); err == nil {
		t.Fatal("Unlock of a free lock succeeded")
	}
	l, j := begin(t, st, runID(1))
	j.Close()
	if _, err := st.Unlock(ctx, false); err == nil {
		t.Fatal("Unlock cleared a live holder without -force")
	}
	h, err := st.Unlock(ctx, true)
	if err != nil || h == nil || h.Run != runID(1) {
		t.Fatalf("Unlock -force = %+v, %v", h, err)
	}
	l2, err := s.reopen(t, st).Lock(ctx, runID(2))
	if err != nil {
		t.Fatalf("Lock after Unlock -force: %v", err)
	}
	l.Release() // the forced-out holder's release leaves the new lock alone
	if h, _, _ := st.Holder(ctx); h == nil || h.Run != runID(2) {
		t.Fatalf("after the old holder's Release the lock is %+v", h)
	}
	l2.Release()
}

func (s Suite) testApprovals(t *testing.T) {
	st := s.store(t)
	if _, err := st.Approve(ctx, runID(1), "gate.go", "ops@box"); err == nil {
		t.Fatal("approved a run that does not exist")
	}
	l, j := begin(t, st, runID(1))
	j.Close()
	l.Release()
	for _, bad := range []string{"", "../x", "gate/x", ".hidden"} {
		if _, err := st.Approve(ctx, runID(1), bad, "ops@box"); err == nil {
			t.Errorf("approved node %q", bad)
		}
	}
	if _, err := st.Approve(ctx, "../../etc", "gate.go", "ops@box"); err == nil {
		t.Error("approved run ../../etc")
	}
	if a, err := st.Approval(ctx, runID(1), "gate.go"); a != nil || err != nil {
		t.Fatalf("approval before approve: %+v %v", a, err)
	}
	other := s.reopen(t, st)
	if _, err := other.Approve(ctx, runID(1), "gate.go", "ops@box"); err != nil {
		t.Fatal(err)
	}
	a, err := st.Approval(ctx, runID(1), "gate.go")
	if err != nil || a == nil || a.By != "ops@box" || a.Node != "gate.go" || a.At.IsZero() {
		t.Fatalf("Approval = %+v, %v", a, err)
	}
}

func (s Suite) testSummary(t *testing.T) {
	st := s.store(t)
	if sm, err := st.Summary(ctx, runID(1)); sm != nil || err != nil {
		t.Fatalf("summary of nothing: %+v %v", sm, err)
	}
	l, j := begin(t, st, runID(1))
	defer l.Release()
	j.Close()
	started := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, status := range []string{"running", "done"} {
		if err := st.PutSummary(ctx, runstore.Summary{Run: runID(1), Status: status, Dir: "/srv/app", ConfigHash: "abc", PID: 42, Started: started}); err != nil {
			t.Fatal(err)
		}
	}
	sm, err := s.reopen(t, st).Summary(ctx, runID(1))
	if err != nil || sm == nil || sm.Status != "done" || sm.Dir != "/srv/app" || sm.PID != 42 || !sm.Started.Equal(started) || sm.Updated.IsZero() {
		t.Fatalf("Summary = %+v, %v", sm, err)
	}
}

func (s Suite) testSamples(t *testing.T) {
	st := s.store(t)
	l, j := begin(t, st, runID(1))
	defer l.Release()
	j.Close()
	if err := st.AppendSamples(ctx, runID(1), []byte(`{"x":1}`)); err == nil {
		t.Fatal("accepted samples without a final newline")
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				batch := fmt.Sprintf("{\"w\":%d,\"i\":%d,\"h\":\"a\"}\n{\"w\":%d,\"i\":%d,\"h\":\"b\"}\n", w, i, w, i)
				if err := st.AppendSamples(ctx, runID(1), []byte(batch)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	type rec struct {
		W, I int
		H    string
	}
	next := map[int]int{}
	var n int
	err := s.reopen(t, st).Samples(ctx, runID(1), func(line []byte) error {
		var r rec
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("line %q: %v", line, err)
		}
		// a batch stays together: a then b of the same (w, i)
		if r.H == "a" && r.I != next[r.W] || r.H == "b" && r.I != next[r.W] {
			return fmt.Errorf("writer %d: sample %d%s out of order (want %d)", r.W, r.I, r.H, next[r.W])
		}
		if r.H == "b" {
			next[r.W]++
		}
		n++
		return nil
	})
	if err != nil || n != 200 {
		t.Fatalf("Samples: %d lines, %v", n, err)
	}
}

func (s Suite) testBackups(t *testing.T) {
	st := s.store(t)
	if bs, err := st.Backups(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("a new store has backups %v (%v)", bs, err)
	}
	for _, bad := range []string{"x", "../a/b", "a/../../b", "/abs/x"} {
		if err := st.PutBackup(ctx, runstore.Backup{ID: bad, Manifest: json.RawMessage(`{}`)}); err == nil {
			t.Errorf("accepted backup id %q", bad)
		}
	}
	created := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, name := range []string{"db", "app"} {
		m := fmt.Sprintf(`{"id":"%s/%s","created_at":"%s","sha256":"ab"}`, runID(1), name, created.Format(time.RFC3339))
		if err := st.PutBackup(ctx, runstore.Backup{ID: runID(1) + "/" + name, Run: runID(1), Name: name, Created: created, Manifest: json.RawMessage(m)}); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.reopen(t, st).Backups(ctx)
	if err != nil || len(bs) != 2 || bs[0].ID != runID(1)+"/app" || bs[1].Name != "db" || bs[1].Run != runID(1) || !bs[0].Created.Equal(created) || !strings.Contains(string(bs[1].Manifest), `"sha256"`) {
		t.Fatalf("Backups = %+v, %v", bs, err)
	}
	if err := st.DeleteBackup(ctx, runID(1)+"/app"); err != nil {
		t.Fatal(err)
	}
	if bs, _ := st.Backups(ctx); len(bs) != 1 || bs[0].Name != "db" {
		t.Fatalf("after delete: %+v", bs)
	}
}
