package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

// BenchmarkStatus_72hWindowPostgres: `upgrader status` of a run in a
// postgres store whose observation window ran 72 h at 1 min on 10 hosts:
// 4,320 checkpoint events of ~2.7 KB in the journal, 43,200 samples.
func BenchmarkStatus_72hWindowPostgres(b *testing.B) {
	pg := testdb.Postgres(b)
	dsn := pg.CreateDatabase(testdb.UniqueName("status"))
	ctx := context.Background()
	store, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Workspace: "shop-prod"})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	run := "20261128T101500-abcd"
	l, err := store.Lock(ctx, run)
	if err != nil {
		b.Fatal(err)
	}
	j, _ := l.Create(ctx)
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	j.Append(runstore.Event{TS: t0, Type: journal.RunStarted, Data: json.RawMessage(`{"run":"` + run + `"}`)})
	j.Append(runstore.Event{TS: t0, Type: journal.NodeStarted, Node: "observe.soak", Data: json.RawMessage(`{"kind":"observe","hosts":["app00"]}`)})
	// a checkpoint as observe writes it after every interval: cursors, matches, kept lines
	cursors, lines := map[string]any{}, map[string][]string{}
	for h := 0; h < 10; h++ {
		cursors[fmt.Sprintf("app%02d|0", h)] = map[string]int64{"ino": 1234567, "off": 987654321}
		lines[fmt.Sprintf("app%02d|/var/log/app/app.log", h)] = []string{strings.Repeat("2026-11-28T10:00:00Z WARN slow request /api/orders took 1532ms ", 3)}
	}
	for m := 0; m < 72*60; m++ {
		v, _ := json.Marshal(map[string]any{"samples": m * 10, "ts": t0.Add(time.Duration(m) * time.Minute), "cursors": cursors, "lines": lines})
		d, _ := json.Marshal(map[string]any{"key": "observe.soak/state", "value": json.RawMessage(v)})
		if err := j.Append(runstore.Event{TS: t0.Add(time.Duration(m) * time.Minute), Type: journal.Checkpoint, Node: "observe.soak", Data: d}); err != nil {
			b.Fatal(err)
		}
	}
	l.Release()
	dl := t0.Add(72 * time.Hour)
	var batch strings.Builder
	fmt.Fprintf(&batch, `{"type":"window","node":"observe.soak","ts":%q,"deadline":%q,"interval":"1m0s","hosts":["app00"]}`+"\n", t0.Format(time.RFC3339), dl.Format(time.RFC3339))
	for m := 0; m < 72*60; m++ {
		for h := 0; h < 10; h++ {
			fmt.Fprintf(&batch, `{"type":"sample","node":"observe.soak","ts":%q,"host":"app%02d","cpu":12.5,"mem":41.2,"load":0.31,"disk":{"/":55.1,"/var":61},"log_matches":{"/var/log/app/app.log":0},"check_failures":{"regression":0}}`+"\n", t0.Add(time.Duration(m)*time.Minute).Format(time.RFC3339), h)
		}
		if m%60 == 59 {
			if err := store.AppendSamples(ctx, run, []byte(batch.String())); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("state {\n  backend = \"postgres\"\n  name = \"shop-prod\"\n}\n"), 0o600)
	os.Setenv("UPGRADER_STATE_DSN", dsn)
	defer os.Unsetenv("UPGRADER_STATE_DSN")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out strings.Builder
		if code := realMain([]string{"status", "-no-color", dir, run}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "43200 samples") && !strings.Contains(out.String(), "observe.soak") {
			b.Fatalf("status: exit %d\n%s", code, out.String())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/status")
}
