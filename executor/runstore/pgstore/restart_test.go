package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

// Issue 16, must show 3: PostgreSQL restarted while a run appends. Appends
// wait and retry; afterwards the journal holds every event exactly once,
// in order, and the lease survived (the outage was shorter than it).
// One private server (its start is the slow part) for both outages.
func TestRestart(t *testing.T) {
	t.Parallel()
	pg := testdb.PrivatePostgres(t)
	t.Run("appendsWaitAndNothingIsLostOrRepeated", func(t *testing.T) { appendsWaitAcrossRestart(t, pg) })
	t.Run("downPastTheLimitFailsCleanly", func(t *testing.T) { downPastTheLimit(t, pg) })
}

func appendsWaitAcrossRestart(t *testing.T, pg *testdb.Instance) {
	dsn := pg.CreateDatabase("state1")
	ctx := context.Background()
	s := open(t, pgstore.Options{DSN: dsn, Workspace: "w", Lease: 20 * time.Second, Retry: time.Minute})
	defer s.Close()
	run := "20261128T101500-abcd"
	l, err := s.Lock(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	j, err := l.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	j.Append(runstore.Event{Type: journal.RunStarted})

	var appended atomic.Int32
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if err := j.Append(runstore.Event{Type: journal.NodeStarted, Node: fmt.Sprintf("step.n%d", i), Index: journal.Idx(i)}); err != nil {
				done <- fmt.Errorf("append %d: %w", i, err)
				return
			}
			appended.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	for appended.Load() < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := pg.Halt(); err != nil {
		t.Fatal(err)
	}
	stalled := appended.Load()
	time.Sleep(3 * time.Second)
	if n := appended.Load(); n > stalled+1 {
		t.Fatalf("%d appends returned while the database was down", n-stalled)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Events(ctx, run)
	if err != nil || len(evs) != 201 {
		t.Fatalf("%d events after the restart (want 201): %v", len(evs), err)
	}
	for i, ev := range evs[1:] {
		if *ev.Index != i {
			t.Fatalf("event %d is %s #%d: lost or repeated", i+1, ev.Node, *ev.Index)
		}
	}
	select {
	case <-l.Lost():
		t.Fatal("the lease was lost over a 3 s outage (lease 20 s)")
	default:
	}
}

// A database down longer than the retry limit: Append fails with an error
// that names the state database, never the DSN, and nothing is half-written.
func downPastTheLimit(t *testing.T, pg *testdb.Instance) {
	dsn := pg.CreateDatabase("state2")
	ctx := context.Background()
	s := open(t, pgstore.Options{DSN: dsn, Workspace: "w", Lease: 20 * time.Second, Retry: 2 * time.Second})
	defer s.Close()
	run := "20261128T101500-abcd"
	l, _ := s.Lock(ctx, run)
	j, _ := l.Create(ctx)
	j.Append(runstore.Event{Type: journal.RunStarted})
	if err := pg.Halt(); err != nil {
		t.Fatal(err)
	}
	err := j.Append(runstore.Event{Type: journal.NodeStarted, Node: "step.a"})
	if err == nil || !strings.Contains(err.Error(), "state database is not reachable") || strings.Contains(err.Error(), pg.Password) {
		t.Fatalf("Append with the database down: %v", err)
	}
	if err := j.Append(runstore.Event{Type: journal.NodeStarted, Node: "step.b"}); err == nil {
		t.Fatal("an append after a failed one succeeded: the journal would have a hole")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Events(ctx, run)
	if err != nil || len(evs) != 1 {
		t.Fatalf("after the outage: %d events, %v", len(evs), err)
	}
}

// Issue 16: samples of a 72 h window at 1 min on 10 hosts stay < 50 MB.
func TestSamples_72hWindowBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 43,200 samples")
	}
	t.Parallel()
	pg, db, dsn := database(t)
	ctx := context.Background()
	schema := testdb.UniqueName("s")
	s := open(t, pgstore.Options{DSN: dsn, Schema: schema, Workspace: "w"})
	defer s.Close()
	run := "20261128T101500-abcd"
	l, _ := s.Lock(ctx, run)
	j, _ := l.Create(ctx)
	j.Append(runstore.Event{Type: journal.RunStarted})
	l.Release()
	// a sample as observe writes it (docs/DESIGN.md, metrics.jsonl): ~240 B
	cpu, mem, load := 12.5, 41.2, 0.31
	rec := map[string]any{"type": "sample", "node": "observe.standby_soak", "cpu": cpu, "mem": mem, "load": load,
		"disk": map[string]float64{"/": 55.1, "/var": 61.0}, "log_matches": map[string]int{"/var/log/app/app.log": 0},
		"check_failures": map[string]int{"regression": 0}}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var total int
	var batch []byte
	for minute := 0; minute < 72*60; minute++ {
		for h := 0; h < 10; h++ {
			rec["ts"], rec["host"] = t0.Add(time.Duration(minute)*time.Minute), fmt.Sprintf("app%02d", h)
			b, _ := json.Marshal(rec)
			batch = append(append(batch, b...), '\n')
			total += len(b) + 1
		}
		if minute%60 == 59 { // an hour per statement: the size is what is measured here
			if err := s.AppendSamples(ctx, run, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	size := pg.QueryString(db, `SELECT pg_total_relation_size('`+schema+`.samples')`)
	var bytes int64
	fmt.Sscan(size, &bytes)
	t.Logf("43,200 samples: %d B of JSON, %.1f MB in PostgreSQL (table, TOAST and index)", total, float64(bytes)/1e6)
	if bytes >= 50e6 {
		t.Fatalf("samples of a 72 h window take %d B, want < 50 MB", bytes)
	}
	n := 0
	start := time.Now()
	if err := s.Samples(ctx, run, func([]byte) error { n++; return nil }); err != nil || n != 43200 {
		t.Fatalf("read back %d samples: %v", n, err)
	}
	t.Logf("read back in %s", time.Since(start))
}

// BenchmarkAppend: one event committed (fenced) per Append, one appender.
func BenchmarkAppend(b *testing.B) {
	pg := testdb.Postgres(b)
	dsn := pg.CreateDatabase(testdb.UniqueName("bench"))
	ctx := context.Background()
	s, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Workspace: "w"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, _ := s.Lock(ctx, "20261128T101500-abcd")
	defer l.Release()
	j, _ := l.Create(ctx)
	data := json.RawMessage(`{"kind":"upload","message":"/etc/app/app.conf (~ changed, 312 B)"}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := j.Append(runstore.Event{Type: journal.ActionStarted, Node: "step.install", Host: "web", Index: journal.Idx(i), Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}
