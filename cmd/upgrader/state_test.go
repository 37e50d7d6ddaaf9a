package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

// sharedStateDir writes a configuration whose state block points at a
// private PostgreSQL database (the DSN through UPGRADER_STATE_DSN, as an
// operator would keep it out of files) and returns its directory and DSN.
func sharedStateDir(t *testing.T, workspace string) (dir, dsn string) {
	t.Helper()
	pg := testdb.Postgres(t)
	dsn = pg.CreateDatabase(testdb.UniqueName("shared"))
	dir = t.TempDir()
	cfg := fmt.Sprintf("state {\n  backend = \"postgres\"\n  name    = %q\n  lease   = \"3s\"\n}\n\nhost \"web\" {\n  address = \"198.51.100.1\"\n}\n", workspace)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("UPGRADER_STATE_DSN", dsn)
	return dir, dsn
}

// `state migrate -from local -to postgres` moves every run (events, summary,
// approvals, samples) and the backup index; a second migrate skips them.
func TestStateMigrate_localToPostgres(t *testing.T) {
	dir, dsn := sharedStateDir(t, "shop-prod")
	ctx := context.Background()
	local := runstore.OpenLocal(filepath.Join(dir, ".upgrader"))
	runs := []string{"20261128T101500-abcd", "20261129T101500-beef"}
	for i, run := range runs {
		l, err := local.Lock(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := l.Create(ctx)
		j.Append(runstore.Event{Type: journal.RunStarted, Data: json.RawMessage(`{"run":"` + run + `"}`)})
		for k := 0; k < 50; k++ {
			j.Append(runstore.Event{Type: journal.Checkpoint, Node: "observe.soak", Data: json.RawMessage(fmt.Sprintf(`{"key":"k","value":%d}`, k))})
		}
		j.Append(runstore.Event{Type: journal.RunFinished, Data: json.RawMessage(`{"outcome":"done"}`)})
		j.Close()
		l.Release()
		local.PutSummary(ctx, runstore.Summary{Run: run, Status: "done"})
		local.Approve(ctx, run, "gate.go", "ops@box")
		var lines strings.Builder
		for k := 0; k < 100+i; k++ {
			fmt.Fprintf(&lines, "{\"type\":\"sample\",\"node\":\"observe.soak\",\"k\":%d}\n", k)
		}
		local.AppendSamples(ctx, run, []byte(lines.String()))
	}
	local.PutBackup(ctx, runstore.Backup{ID: runs[0] + "/db", Manifest: json.RawMessage(`{"id":"x","sha256":"ab"}`)})

	var out, errb strings.Builder
	if code := realMain([]string{"state", "migrate", "-from", "local", "-to", "postgres", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "2 run(s) (104 events, 201 observation samples, 2 approvals) and 1 backup index entries") {
		t.Errorf("output:\n%s", out.String())
	}
	if strings.Contains(out.String()+errb.String(), dsn) {
		t.Error("the DSN was printed")
	}
	pg, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Workspace: "shop-prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for _, run := range runs {
		evs, _, err := pg.Events(ctx, run)
		if err != nil || len(evs) != 52 || evs[51].Type != journal.RunFinished {
			t.Fatalf("%s: %d events, %v", run, len(evs), err)
		}
		if a, _ := pg.Approval(ctx, run, "gate.go"); a == nil || a.By != "ops@box" {
			t.Errorf("%s: approval %+v", run, a)
		}
		if sm, _ := pg.Summary(ctx, run); sm == nil || sm.Status != "done" {
			t.Errorf("%s: summary %+v", run, sm)
		}
	}
	if bs, _ := pg.Backups(ctx); len(bs) != 1 {
		t.Errorf("backups %+v", bs)
	}
	out.Reset()
	if code := realMain([]string{"state", "migrate", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "2 run(s) were there already") {
		t.Fatalf("second migrate: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
