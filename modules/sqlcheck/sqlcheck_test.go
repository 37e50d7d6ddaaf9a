package sqlcheck

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func config(expect, query string) *modules.Config {
	r := hcl.Range{Filename: "checks.hcl", Start: hcl.Pos{Line: 5, Column: 14}, End: hcl.Pos{Line: 5, Column: 20}}
	return &modules.Config{
		Value: cty.ObjectVal(map[string]cty.Value{
			"database": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("prod")}),
			"query":    cty.StringVal(query),
			"expect":   cty.StringVal(expect),
		}),
		Ranges:    map[string]hcl.Range{"expect": r, "query": r, "database": r},
		DeclRange: r,
	}
}

// TestSQL_cases runs testdata/cases.txt against real PostgreSQL and MariaDB.
func TestSQL_cases(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			var in *testdb.Instance
			if driver == "postgres" {
				in = testdb.Postgres(t)
			} else {
				in = testdb.MariaDB(t)
			}
			name := testdb.UniqueName("chk")
			dsn := in.CreateDatabase(name)
			in.Exec(name, "CREATE TABLE users (id int PRIMARY KEY, name text, email text); INSERT INTO users VALUES (1, 'alice', NULL), (2, 'bob', 'b@x'), (3, 'carol', 'c@x')")
			env := &modtest.Env{Databases: map[string]*modules.Database{"prod": {Name: "prod", Driver: driver, DSN: dsn}}}
			for _, line := range strings.Split(string(b), "\n") {
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				f := strings.Split(line, "|")
				expect, query, want := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
				err := New().Check(context.Background(), &modules.Request{Config: config(expect, query), Node: "check.db", Index: -1, Env: env})
				switch {
				case want == "ok" && err != nil:
					t.Errorf("%s: %v", line, err)
				case want != "ok" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: err = %v, want %q", line, err, want)
				}
			}
			// A check must not write.
			err := New().Check(context.Background(), &modules.Request{Config: config("rows = 0", "DELETE FROM users RETURNING id"), Env: env})
			if driver == "postgres" && (err == nil || !strings.Contains(err.Error(), "read-only")) {
				t.Errorf("a write in a check: %v", err)
			}
			if n := in.QueryString(name, "SELECT COUNT(*) FROM users"); n != "3" {
				t.Errorf("the check changed data: %s users left", n)
			}
		})
	}
}

func TestSQL_validate(t *testing.T) {
	for expect, want := range map[string]string{
		"3":         "write an operator and a value",
		"> many":    "> needs a number",
		"rows = x":  "rows must be compared with a number",
		"rows >= 2": "",
		"= ok":      "",
		"<> 0":      "",
	} {
		ds := New().Validate(config(expect, "SELECT 1"))
		if want == "" {
			if ds.HasErrors() {
				t.Errorf("%q: %v", expect, ds)
			}
			continue
		}
		if !ds.HasErrors() || !strings.Contains(ds.Error(), want) || ds[0].Subject == nil {
			t.Errorf("%q: diags %v, want %q with a subject", expect, ds, want)
		}
	}
}

func TestSQL_databaseDown(t *testing.T) {
	env := &modtest.Env{Databases: map[string]*modules.Database{"prod": {Name: "prod", Driver: "mysql", DSN: "u:p@tcp(127.0.0.1:1)/x"}}}
	err := New().Check(context.Background(), &modules.Request{Config: config("> 0", "SELECT 1"), Env: env})
	if err == nil || !strings.Contains(err.Error(), `database "prod" is not reachable`) {
		t.Fatalf("err = %v", err)
	}
}
