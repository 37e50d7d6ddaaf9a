package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/migrate"
	"github.com/upgrader-dev/upgrader/modules/sqlcheck"
)

// A migrate node's rollback block runs instead of its down files: on a real
// PostgreSQL, migrate applies 0002 (renames every user), the phase's check
// then fails, and the rollback block restores the backup taken before, so
// the users' names come back (the down file would only drop the column).
func TestNodeRollback_migrateRestoresBackup(t *testing.T) {
	pg := testdb.Postgres(t)
	name := testdb.UniqueName("noderb")
	dsn := pg.CreateDatabase(name)
	pg.Exec(name, `CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO users VALUES (1, 'ada'), (2, 'grace');
		CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
		INSERT INTO schema_migrations VALUES (1, false);`)

	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "node_rollback"))); err != nil {
		t.Fatal(err)
	}
	reg := modules.NewRegistry()
	reg.RegisterNode(&backup.Backup{Version: "test"})
	reg.RegisterAction(&backup.Restore{})
	reg.RegisterNode(migrate.New())
	reg.RegisterProbe(sqlcheck.New())
	cfg, ds := lang.Load(dir, Schemas(reg), lang.Options{Vars: []string{"dsn=" + dsn}, Env: map[string]string{}, Apply: true})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	if ds := Validate(cfg, reg); ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	opts := Options{Config: cfg, Registry: reg, StateDir: filepath.Join(dir, ".upgrader"), UndoBackoff: 10 * time.Millisecond}

	p, err := MakePlan(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, pn := range p.Nodes {
		if pn.Addr == "migrate.prod" && (pn.Undo != "the rollback block" || len(pn.Rollback) != 1 || !strings.Contains(pn.Rollback[0], "restore")) {
			t.Errorf("plan of migrate.prod: undo %q, rollback %q", pn.Undo, pn.Rollback)
		}
	}

	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "check.after" {
		t.Fatalf("outcome %s, failed %s: %s", sum.Outcome, sum.Failed, sum.Error)
	}
	q := func(sql string) string {
		var s string
		if err := pg.DB(name).QueryRow(sql).Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return s
	}
	if got := q(`select string_agg(name, ',' order by id) from users`); got != "ada,grace" {
		t.Errorf("users after rollback: %s, want ada,grace (the backup restored)", got)
	}
	if got := q(`select count(*)::text from information_schema.columns where table_name = 'users' and column_name = 'email'`); got != "0" {
		t.Errorf("users.email still there after the restore")
	}
	if got := q(`select version::text || ' ' || dirty::text from schema_migrations`); got != "1 false" {
		t.Errorf("schema_migrations after rollback: %s, want 1 false", got)
	}
	// the journal says the rollback block undid migrate.prod
	evs, _, err := journal.Read(journal.Path(opts.StateDir, sum.Run))
	if err != nil {
		t.Fatal(err)
	}
	var undone bool
	for _, ev := range evs {
		if ev.Type == journal.UndoFinished && ev.Node == "migrate.prod" {
			undone = true
		}
	}
	if !undone {
		t.Error("no undo_finished for migrate.prod in the journal")
	}
}
