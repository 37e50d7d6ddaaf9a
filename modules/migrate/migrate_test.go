package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
	"github.com/upgrader-dev/upgrader/modules/modtest"
	"github.com/upgrader-dev/upgrader/modules/schemacheck"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func server(t testing.TB, driver string) *testdb.Instance {
	if driver == "postgres" {
		return testdb.Postgres(t)
	}
	return testdb.MariaDB(t)
}

var dirRange = hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 4, Column: 14}, End: hcl.Pos{Line: 4, Column: 30}}

func config(dir string) *modules.Config {
	return &modules.Config{
		Value: cty.ObjectVal(map[string]cty.Value{
			"database": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("prod")}),
			"dir":      cty.StringVal(dir),
		}),
		Ranges:    map[string]hcl.Range{"dir": dirRange},
		DeclRange: hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 2, Column: 1}},
		Dir:       "testdata",
	}
}

type fixture struct {
	in     *testdb.Instance
	db     string
	env    *modtest.Env
	log    bytes.Buffer
	record json.RawMessage
}

func newFixture(t *testing.T, driver string) *fixture {
	in := server(t, driver)
	f := &fixture{in: in, db: testdb.UniqueName("mig")}
	dsn := in.CreateDatabase(f.db)
	f.env = &modtest.Env{Databases: map[string]*modules.Database{"prod": {Name: "prod", Driver: driver, DSN: dsn}}}
	return f
}

func (f *fixture) req(dir string) *modules.Request {
	return &modules.Request{Config: config(dir), Node: "migrate.prod", Index: -1, Env: f.env, Log: &f.log,
		Record: func(s json.RawMessage) error { f.record = s; return nil }}
}

func (f *fixture) schema(t *testing.T) *schemacheck.Schema {
	t.Helper()
	db, err := dbconn.Open(context.Background(), f.env, "prod")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := schemacheck.Inspect(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) version(t *testing.T) string {
	return f.in.QueryString(f.db, "SELECT CONCAT(version, ' ', CASE WHEN dirty THEN 'dirty' ELSE 'clean' END) FROM schema_migrations")
}

// onlyFirst copies version 1 of src into a temp dir: the starting point.
func onlyFirst(t *testing.T, src string) string {
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join("testdata", src, "0001_*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMigrate_applyThenUndoRestoresSchema(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver)
			ctx := context.Background()
			m := New()
			if _, err := m.Apply(ctx, f.req(onlyFirst(t, driver+"/ok"))); err != nil {
				t.Fatalf("apply version 1: %v", err)
			}
			start := f.schema(t)

			p, err := m.Plan(ctx, f.req(driver+"/ok"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Change != modules.Update || !strings.Contains(p.Detail, "+ 0002_add_email.up.sql\n+ 0003_orders.up.sql") ||
				!strings.Contains(p.Summary, "2 pending (version 1 -> 3)") {
				t.Errorf("plan: %s / %s\n%s", p.Change, p.Summary, p.Detail)
			}
			if gotWarn := len(p.Warnings) > 0; gotWarn != (driver == "mysql") {
				t.Errorf("warnings = %v (MySQL must warn that it is not transactional, PostgreSQL must not)", p.Warnings)
			}

			out, err := m.Apply(ctx, f.req(driver+"/ok"))
			if err != nil {
				t.Fatalf("apply: %v\n%s", err, f.log.String())
			}
			if !out.Changed || out.Outputs["from"].AsBigFloat().String() != "1" || out.Outputs["to"].AsBigFloat().String() != "3" {
				t.Errorf("outcome: %+v", out)
			}
			if v := f.version(t); v != "3 clean" {
				t.Errorf("schema_migrations = %q, want 3 clean", v)
			}
			if schemacheck.Diff(start, f.schema(t)) == "" {
				t.Fatal("migrations changed nothing")
			}
			p, err = m.Plan(ctx, f.req(driver+"/ok"))
			if err != nil || p.Change != modules.NoOp {
				t.Errorf("plan after apply: %v %+v", err, p)
			}

			if err := m.Undo(ctx, f.req(driver+"/ok"), f.record); err != nil {
				t.Fatalf("undo: %v", err)
			}
			if d := schemacheck.Diff(start, f.schema(t)); d != "" {
				t.Errorf("schema after undo differs from the start:\n%s", d)
			}
			if v := f.version(t); v != "1 clean" {
				t.Errorf("schema_migrations after undo = %q, want 1 clean", v)
			}
		})
	}
}

func TestMigrate_failingMigrationStops(t *testing.T) {
	cases := []struct {
		driver, version, line string
		orders                bool // does the table from the failing file's first statement remain?
	}{
		{"postgres", "2 clean", "postgres/failing/0003_orders.up.sql:8", false},
		{"mysql", "3 dirty", "mysql/failing/0003_orders.up.sql:7", true},
	}
	for _, c := range cases {
		t.Run(c.driver, func(t *testing.T) {
			f := newFixture(t, c.driver)
			_, err := New().Apply(context.Background(), f.req(c.driver+"/failing"))
			if err == nil {
				t.Fatal("the failing migration did not fail")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.line) {
				t.Errorf("error does not name %s: %v", c.line, err)
			}
			ds := diags.FromErr(err)
			if ds[0].Subject == nil || !strings.HasSuffix(ds[0].Subject.Filename, "0003_orders.up.sql") {
				t.Errorf("diagnostic subject = %+v, want the migration file", ds[0].Subject)
			}
			if v := f.version(t); v != c.version {
				t.Errorf("schema_migrations = %q, want %q", v, c.version)
			}
			q := "SELECT COUNT(*) FROM information_schema.tables WHERE table_name IN ('orders', 'more_orders') AND table_schema = " +
				map[string]string{"postgres": "current_schema()", "mysql": "DATABASE()"}[c.driver]
			n := f.in.QueryString(f.db, q)
			if want := map[bool]string{true: "1", false: "0"}[c.orders]; n != want {
				t.Errorf("%s tables from 0003/0004 remain, want %s", n, want)
			}
			if strings.Contains(f.log.String(), "0004") {
				t.Errorf("ran past the failing migration:\n%s", f.log.String())
			}
		})
	}
}

func TestMigrate_dirtyRefused(t *testing.T) {
	f := newFixture(t, "postgres")
	f.in.Exec(f.db, "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (2, true)")
	_, err := New().Plan(context.Background(), f.req("postgres/ok"))
	if err == nil || !strings.Contains(err.Error(), "version 2 is dirty") {
		t.Fatalf("err = %v", err)
	}
	f.in.Exec(f.db, "UPDATE schema_migrations SET version = 9, dirty = false")
	_, err = New().Apply(context.Background(), f.req("postgres/ok"))
	if err == nil || !strings.Contains(err.Error(), "at version 9, which postgres/ok does not hold") {
		t.Fatalf("err = %v", err)
	}
}

func TestMigrate_invalidDirectories(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/invalid/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "ERROR"))
			if err != nil {
				t.Fatal(err)
			}
			ds := New().Validate(config("invalid/" + filepath.Base(dir)))
			if !ds.HasErrors() {
				t.Fatal("no error")
			}
			var got string
			for _, d := range ds {
				got += d.Summary + ": " + d.Detail + "\n"
			}
			for _, w := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics %q\ndo not contain %q", got, w)
				}
			}
			for _, d := range ds {
				if d.Subject == nil || *d.Subject != dirRange {
					t.Errorf("diagnostic without the dir attribute's range: %+v", d)
				}
			}
		})
	}
	for _, ok := range []string{"postgres/ok", "mysql/ok", "postgres/failing"} {
		if ds := New().Validate(config(ok)); ds.HasErrors() {
			t.Errorf("%s: %v", ok, ds)
		}
	}
}

func TestMigrate_changes(t *testing.T) {
	hosts, dbs := New().Changes(config("postgres/ok"))
	if len(hosts) != 0 || len(dbs) != 1 || dbs[0] != "prod" {
		t.Fatalf("Changes = %v, %v", hosts, dbs)
	}
}
