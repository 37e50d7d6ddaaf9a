package executor

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

// Issue 16, must show 3: PostgreSQL restarted during an apply. The run
// waits for the database, loses no event and runs no action twice.
func TestApply_postgresRestartedMidRun(t *testing.T) {
	t.Parallel()
	pg := testdb.PrivatePostgres(t)
	dsn := pg.CreateDatabase("state")
	ctx := context.Background()
	store, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Workspace: "w", Lease: 30 * time.Second, Retry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const steps = 300
	var src strings.Builder
	src.WriteString("host \"web\" {\n  address = \"198.51.100.10\"\n}\n")
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&src, "step \"s%03d\" {\n  host = host.web\n  backup_required = false\n", i)
		if i > 1 {
			fmt.Fprintf(&src, "  depends_on = [step.s%03d]\n", i-1)
		}
		fmt.Fprintf(&src, "  mark { text = \"%d\" }\n}\n", i)
	}
	w := newWorld()
	cfg := w.load(t, src.String())
	opts := w.opts(t, cfg)
	opts.Store = store
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Apply(ctx, opts)
		done <- result{sum, err}
	}()
	waitUntil(t, func() bool { return len(w.tr.get()) >= 5 })
	if err := pg.Halt(); err != nil {
		t.Fatal(err)
	}
	atHalt := len(w.tr.get())
	time.Sleep(2 * time.Second)
	if n := len(w.tr.get()); n > atHalt+1 {
		t.Fatalf("%d actions ran while the database was down (nothing journaled them)", n-atHalt)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.sum.Outcome != OutcomeDone {
		t.Fatalf("apply across the restart: %v %+v", res.err, res.sum)
	}
	if atHalt >= steps {
		t.Fatal("the run was over before the database stopped: nothing was proven")
	}
	got := w.tr.get()
	if len(got) != steps {
		t.Fatalf("%d actions ran, want %d (each once)", len(got), steps)
	}
	for i, g := range got {
		if g != fmt.Sprintf("do %d@web", i+1) {
			t.Fatalf("action %d = %q: repeated or skipped", i+1, g)
		}
	}
	rs, err := ReplayFrom(ctx, store, res.sum.Run)
	if err != nil || rs.Outcome != OutcomeDone || len(rs.Order) != steps {
		t.Fatalf("the journal in PostgreSQL: %v, outcome %q, %d nodes", err, rs.Outcome, len(rs.Order))
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkApply_noopNodesPostgres is BenchmarkApply_noopNodes with the
// journal in PostgreSQL (a local server, testdb): the executor's overhead
// per node when every event is a committed, fenced row.
func BenchmarkApply_noopNodesPostgres(b *testing.B) {
	const nodes, chain = 2000, 10
	var src strings.Builder
	for i := 0; i < nodes; i++ {
		fmt.Fprintf(&src, "noop \"n%05d\" {\n", i)
		if i%chain != 0 {
			fmt.Fprintf(&src, "  depends_on = [noop.n%05d]\n", i-1)
		}
		src.WriteString("}\n")
	}
	pg := testdb.Postgres(b)
	dsn := pg.CreateDatabase(testdb.UniqueName("bench"))
	store, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, Workspace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	w := newWorld()
	cfg := w.load(b, src.String())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		opts := Options{Config: cfg, Registry: w.reg, StateDir: filepath.Join(b.TempDir(), ".upgrader"), Store: store, Log: io.Discard}
		sum, err := Apply(context.Background(), opts)
		if err != nil || sum.Outcome != OutcomeDone {
			b.Fatalf("%v %+v", err, sum)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*nodes), "ms/node")
}
