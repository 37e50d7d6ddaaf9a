package schemacheck

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

var update = flag.Bool("update", false, "rewrite the golden diffs in testdata")

func TestMain(m *testing.M) { testdb.Main(m) }

func server(t testing.TB, driver string) *testdb.Instance {
	if driver == "postgres" {
		return testdb.Postgres(t)
	}
	return testdb.MariaDB(t)
}

// pair creates two databases on one server and returns an Env naming them
// database "prod" and reference "test".
func pair(t testing.TB, in *testdb.Instance) *modtest.Env {
	a, b := testdb.UniqueName("prod"), testdb.UniqueName("test")
	return &modtest.Env{Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: in.Driver, DSN: in.CreateDatabase(a)},
		"test": {Name: "test", Driver: in.Driver, DSN: in.CreateDatabase(b)},
	}}
}

func dbName(env *modtest.Env, name string) string {
	dsn := env.Databases[name].DSN
	dsn = dsn[strings.LastIndex(dsn, "/")+1:]
	return dsn[:strings.Index(dsn, "?")]
}

func inspect(t testing.TB, env *modtest.Env, name string) *Schema {
	t.Helper()
	db, err := dbconn.Open(context.Background(), env, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Inspect(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDiff_drift runs every testdata/DRIVER/*.txtar case: common.sql on both
// databases, then the case's database.sql and reference.sql; the diff must
// equal the golden section "diff" and hold exactly one difference (none for
// identical and spelling-only cases).
func TestDiff_drift(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			server(t, driver) // skip or fail once, before the cases
			common, err := os.ReadFile(filepath.Join("testdata", driver, "common.sql"))
			if err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join("testdata", driver, "*.txtar"))
			if len(files) == 0 {
				t.Fatal("no cases")
			}
			for _, file := range files {
				name := strings.TrimSuffix(filepath.Base(file), ".txtar")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					in := server(t, driver)
					ar, err := txtar.ParseFile(file)
					if err != nil {
						t.Fatal(err)
					}
					sections := map[string]string{}
					for _, f := range ar.Files {
						sections[f.Name] = strings.TrimSpace(string(f.Data))
					}
					env := pair(t, in)
					for db, section := range map[string]string{"prod": "database.sql", "test": "reference.sql"} {
						in.Exec(dbName(env, db), string(common))
						if sql := sections[section]; sql != "" {
							in.Exec(dbName(env, db), sql)
						}
					}
					got := Diff(inspect(t, env, "prod"), inspect(t, env, "test"))
					if *update {
						ar.Files = ar.Files[:2]
						ar.Files = append(ar.Files, txtar.File{Name: "diff", Data: []byte(got)})
						if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					want, ok := sections["diff"]
					if !ok && !*update {
						t.Fatalf("no golden diff section; run with -update and review it:\n%s", got)
					}
					if strings.TrimSpace(got) != want {
						t.Errorf("diff:\n%s\nwant:\n%s", got, want)
					}
					n := countChanges(got)
					wantN := 1
					if name == "identical" || name == "spelling" || name == "index_renamed" {
						wantN = 0
					}
					if n != wantN {
						t.Errorf("%d differences reported, want %d:\n%s", n, wantN, got)
					}
				})
			}
		})
	}
}

// countChanges counts reported differences: every +/-/~ line except the
// "~ table X" headers that group a table's changes.
func countChanges(diff string) int {
	n := 0
	for _, l := range strings.Split(diff, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "~ table ") {
			continue
		}
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "~ ") {
			n++
		}
	}
	return n
}
