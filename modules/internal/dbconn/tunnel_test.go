package dbconn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
	"github.com/upgrader-dev/upgrader/modules/migrate"
	"github.com/upgrader-dev/upgrader/modules/modtest"
	"github.com/upgrader-dev/upgrader/modules/schemacheck"
	"github.com/upgrader-dev/upgrader/modules/sqlcheck"
)

// TestTunnel_databaseOnlyOnTheHost: PostgreSQL listens on 127.0.0.1 inside
// a test host's network namespace, so the controller reaches it only through
// an SSH tunnel from that host (the database block's `host`). schema_check,
// migrate and the sql check all go through it.
func TestTunnel_databaseOnlyOnTheHost(t *testing.T) {
	testdb.Require(t, "postgres")
	bed := testbed.New(t, "db")
	h := bed.Host("db")
	srv := testdb.PostgresOn(t, h.Exec, 55432)
	srv.Psql(t, "postgres", "CREATE DATABASE prod; CREATE DATABASE test;")
	srv.Psql(t, "prod", "CREATE TABLE users (id int PRIMARY KEY);")
	srv.Psql(t, "test", "CREATE TABLE users (id int PRIMARY KEY, email text);")

	target, err := bed.Target("db")
	if err != nil {
		t.Fatal(err)
	}
	env := &modtest.Env{
		Targets: map[string]modules.Target{"db": target},
		Databases: map[string]*modules.Database{
			"prod":   {Name: "prod", Driver: "postgres", DSN: srv.DSN("prod"), Host: "db"},
			"test":   {Name: "test", Driver: "postgres", DSN: srv.DSN("test"), Host: "db"},
			"direct": {Name: "direct", Driver: "postgres", DSN: srv.DSN("prod")},
		},
	}
	ctx := context.Background()

	// Without the tunnel the controller cannot reach it.
	if _, err := dbconn.Open(ctx, env, "direct"); err == nil || !strings.Contains(err.Error(), `database "direct" is not reachable`) {
		t.Fatalf("direct connection: %v (the test database must not be reachable from the controller)", err)
	}

	ref := func(n string) cty.Value { return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(n)}) }
	cfg := func(attrs map[string]cty.Value) *modules.Config {
		return &modules.Config{Value: cty.ObjectVal(attrs), DeclRange: hcl.Range{Filename: "main.hcl"}, Dir: "../../migrate/testdata"}
	}
	req := func(c *modules.Config) *modules.Request { return &modules.Request{Config: c, Index: -1, Env: env} }

	p, err := schemacheck.New().Plan(ctx, req(cfg(map[string]cty.Value{"database": ref("prod"), "reference": ref("test")})))
	if err != nil {
		t.Fatal(err)
	}
	if want := "~ table users\n    + column email text NULL\n"; p.Outputs["diff"].AsString() != want {
		t.Errorf("diff through the tunnel:\n%s\nwant:\n%s", p.Outputs["diff"].AsString(), want)
	}

	srv.Psql(t, "prod", "DROP TABLE users;")
	if _, err := migrate.New().Apply(ctx, req(cfg(map[string]cty.Value{"database": ref("prod"), "dir": cty.StringVal("postgres/ok")}))); err != nil {
		t.Fatalf("migrate through the tunnel: %v", err)
	}
	if v := srv.Psql(t, "prod", "SELECT version FROM schema_migrations"); v != "3" {
		t.Errorf("schema_migrations on the host = %q, want 3", v)
	}
	chk := cfg(map[string]cty.Value{"database": ref("prod"), "query": cty.StringVal("SELECT COUNT(*) FROM orders"), "expect": cty.StringVal("= 0")})
	if err := sqlcheck.New().Check(ctx, req(chk)); err != nil {
		t.Errorf("sql check through the tunnel: %v", err)
	}
}
