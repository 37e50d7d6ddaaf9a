package testdb_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestPostgres_createExecQuery(t *testing.T) {
	pg := testdb.Postgres(t)
	pg.CreateDatabase("app")
	pg.Exec("app", "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	if got := pg.QueryString("app", "SELECT count(*) FROM t"); got != "2" {
		t.Fatalf("count = %q, want 2", got)
	}
	if got := pg.QueryString("app", "SHOW server_version"); got[:3] != "15." {
		t.Fatalf("server_version = %q, want 15.x", got)
	}
	if _, err := os.Stat(pg.Dir); err != nil {
		t.Fatalf("data dir: %v", err)
	}
	// pg_dump from the same installation can reach it (the backup module needs this).
	out, err := exec.Command(pg.BinDir+"/pg_dump", "--schema-only", pg.DSN("app")).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
}

func TestPostgres_wrongPasswordRefused(t *testing.T) {
	pg := testdb.Postgres(t)
	srv := *pg.Server
	srv.Password = "wrong"
	db := pg.DB("postgres")
	if err := db.Ping(); err != nil {
		t.Fatalf("right password: %v", err)
	}
	in := testdb.Postgres(t)
	in.Server = &srv
	if err := in.ExecErr("postgres", "SELECT 1"); err == nil {
		t.Fatal("a wrong password was accepted: the server does not check passwords over TCP")
	}
}

func TestMariaDB_createExecQuery(t *testing.T) {
	my := testdb.MariaDB(t)
	my.CreateDatabase("app")
	my.Exec("app", "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	if got := my.QueryString("app", "SELECT count(*) FROM t"); got != "2" {
		t.Fatalf("count = %q, want 2", got)
	}
	if v := my.QueryString("app", "SELECT version()"); len(v) == 0 {
		t.Fatal("empty version")
	}
	srv := *my.Server
	srv.Password = "wrong"
	in := testdb.MariaDB(t)
	in.Server = &srv
	if err := in.ExecErr("app", "SELECT 1"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

func TestInstance_dropsDatabasesAtCleanup(t *testing.T) {
	pg := testdb.Postgres(t)
	t.Run("inner", func(t *testing.T) {
		in := testdb.Postgres(t)
		in.CreateDatabase("dropped_later")
	})
	if got := pg.QueryString("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'dropped_later'"); got != "0" {
		t.Fatalf("database left behind after the test ended")
	}
}
