package schemacheck

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func ref(name string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "driver": cty.StringVal("postgres")})
}

func config(attrs map[string]cty.Value) *modules.Config {
	rng := func(line int) hcl.Range {
		return hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: line, Column: 3}, End: hcl.Pos{Line: line, Column: 20}}
	}
	ranges := map[string]hcl.Range{}
	i := 2
	for k := range attrs {
		ranges[k] = rng(i)
		i++
	}
	return &modules.Config{Value: cty.ObjectVal(attrs), Ranges: ranges, DeclRange: rng(1)}
}

func request(env *modtest.Env, cfg *modules.Config) *modules.Request {
	return &modules.Request{Config: cfg, Node: "schema_check.prod_vs_test", Index: -1, Env: env}
}

const schemaSQL = `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE audit_log (id int, line text);`

func TestSchemaCheck_planAndApply(t *testing.T) {
	in := server(t, "postgres")
	env := pair(t, in)
	in.Exec(dbName(env, "prod"), schemaSQL)
	in.Exec(dbName(env, "test"), schemaSQL+"\nALTER TABLE users ADD COLUMN name text; DROP TABLE audit_log;")
	ctx := context.Background()
	m := New()

	// Differences, on_mismatch = "continue": plan knows .matches and .diff.
	cont := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test"), "on_mismatch": cty.StringVal("continue")})
	p, err := m.Plan(ctx, request(env, cont))
	if err != nil {
		t.Fatal(err)
	}
	if p.Outputs["matches"].True() {
		t.Fatalf("plan says the schemas match")
	}
	wantDiff := "- table audit_log (2 columns)\n~ table users\n    + column name text NULL\n"
	if got := p.Outputs["diff"].AsString(); got != wantDiff {
		t.Fatalf("plan diff:\n%s\nwant:\n%s", got, wantDiff)
	}
	if !strings.Contains(p.Summary, "differs") || !strings.Contains(p.Detail, "- only in database.prod") {
		t.Errorf("plan summary/detail: %q / %q", p.Summary, p.Detail)
	}
	if len(p.Facts) != 2 {
		t.Errorf("facts = %v, want a fingerprint of each schema", p.Facts)
	}
	out, err := m.Apply(ctx, request(env, cont))
	if err != nil {
		t.Fatalf("continue: %v", err)
	}
	if out.Outputs["matches"].True() || out.Outputs["diff"].AsString() != wantDiff {
		t.Errorf("apply outputs = %#v", out.Outputs)
	}

	// on_mismatch = "fail" (the default) fails apply with the diff.
	fail := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test")})
	p, err = m.Plan(ctx, request(env, fail))
	if err != nil || len(p.Warnings) == 0 {
		t.Fatalf("plan with fail: %v, warnings %v", err, p.Warnings)
	}
	_, err = m.Apply(ctx, request(env, fail))
	if err == nil || !strings.Contains(err.Error(), "database.prod differs from database.test") {
		t.Fatalf("apply with fail: %v", err)
	}

	// ignore leaves audit_log out; after adding the column they match.
	in.Exec(dbName(env, "prod"), "ALTER TABLE users ADD COLUMN name text")
	ign := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test"),
		"ignore": cty.ListVal([]cty.Value{cty.StringVal("audit_*")})})
	out, err = m.Apply(ctx, request(env, ign))
	if err != nil {
		t.Fatalf("after fixing: %v", err)
	}
	if !out.Outputs["matches"].True() || out.Outputs["diff"].AsString() != "" {
		t.Errorf("outputs after fixing = %#v", out.Outputs)
	}
}

func TestSchemaCheck_databaseDown(t *testing.T) {
	env := &modtest.Env{Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: "postgres", DSN: "postgres://u:p@127.0.0.1:1/db"},
		"test": {Name: "test", Driver: "postgres", DSN: "postgres://u:p@127.0.0.1:1/db"},
	}}
	_, err := New().Plan(context.Background(), request(env, config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test")})))
	if err == nil || !strings.Contains(err.Error(), `database "prod" is not reachable`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSchemaCheck_validate(t *testing.T) {
	cases := []struct {
		name  string
		attrs map[string]cty.Value
		want  string
	}{
		{"bad on_mismatch", map[string]cty.Value{"database": ref("a"), "reference": ref("b"), "on_mismatch": cty.StringVal("ignore")}, `on_mismatch is "ignore"`},
		{"itself", map[string]cty.Value{"database": ref("a"), "reference": ref("a")}, "both database.a"},
		{"not a reference", map[string]cty.Value{"database": cty.StringVal("prod"), "reference": ref("b")}, "must name a database block"},
		{"bad pattern", map[string]cty.Value{"database": ref("a"), "reference": ref("b"), "ignore": cty.ListVal([]cty.Value{cty.StringVal("[a")})}, "not a valid pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := New().Validate(config(c.attrs))
			if !ds.HasErrors() || !strings.Contains(ds.Error(), c.want) {
				t.Fatalf("diags = %v, want %q", ds, c.want)
			}
			if ds[0].Subject == nil || ds[0].Subject.Filename != "main.hcl" {
				t.Errorf("diagnostic has no subject: %#v", ds[0])
			}
		})
	}
	if ds := New().Validate(config(map[string]cty.Value{"database": ref("a"), "reference": ref("b")})); ds.HasErrors() {
		t.Errorf("valid config: %v", ds)
	}
	// Unknown references (known after another node) are not judged yet.
	if ds := New().Validate(config(map[string]cty.Value{"database": cty.UnknownVal(cty.DynamicPseudoType), "reference": ref("b")})); ds.HasErrors() {
		t.Errorf("unknown database: %v", ds)
	}
}

func TestSchemaCheck_viewsUnlessTurnedOff(t *testing.T) {
	in := server(t, "postgres")
	env := pair(t, in)
	in.Exec(dbName(env, "prod"), schemaSQL+"\nCREATE VIEW v AS SELECT id FROM users;")
	in.Exec(dbName(env, "test"), schemaSQL+"\nCREATE VIEW v AS SELECT id, email FROM users;")
	for views, wantMatch := range map[cty.Value]bool{cty.NullVal(cty.Bool): false, cty.True: false, cty.False: true} {
		cfg := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test"),
			"on_mismatch": cty.StringVal("continue"), "include_views": views})
		out, err := New().Apply(context.Background(), request(env, cfg))
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Outputs["matches"].True(); got != wantMatch {
			t.Errorf("include_views = %#v: matches = %v, want %v\n%s", views, got, wantMatch, out.Outputs["diff"].AsString())
		}
	}
}

// TestSchemaCheck_migrationsTableLeftOut: right after migrate brought prod
// to test's schema, prod has schema_migrations and test (migrated by other
// means) may not; that is not drift, and the plan says it was left out.
// The plan's data lists each difference for programs.
func TestSchemaCheck_migrationsTableLeftOut(t *testing.T) {
	in := server(t, "postgres")
	env := pair(t, in)
	in.Exec(dbName(env, "prod"), schemaSQL+"\nCREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);")
	in.Exec(dbName(env, "test"), schemaSQL)
	p, err := New().Plan(context.Background(), request(env, config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test")})))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Outputs["matches"].True() || !strings.Contains(p.Summary, "schema_migrations (migrate's bookkeeping) left out") {
		t.Errorf("plan: matches %v, summary %q\n%s", p.Outputs["matches"], p.Summary, p.Detail)
	}
	var data struct {
		Matches     bool         `json:"matches"`
		LeftOut     []string     `json:"left_out"`
		Differences []Difference `json:"differences"`
	}
	if err := json.Unmarshal(p.Data, &data); err != nil || !data.Matches || len(data.LeftOut) != 1 || len(data.Differences) != 0 {
		t.Errorf("data %s: %v", p.Data, err)
	}

	// migrations_table = "" compares it like any table.
	cfg := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test"), "migrations_table": cty.StringVal(""),
		"on_mismatch": cty.StringVal("continue")})
	p, err = New().Plan(context.Background(), request(env, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if p.Outputs["matches"].True() || p.Outputs["diff"].AsString() != "- table schema_migrations (2 columns)\n" {
		t.Errorf("migrations_table = \"\": diff %q", p.Outputs["diff"].AsString())
	}
	if err := json.Unmarshal(p.Data, &data); err != nil || len(data.Differences) != 1 {
		t.Fatalf("data %s: %v", p.Data, err)
	}
	if d := data.Differences[0]; d.Change != "-" || d.Object != "table" || d.Name != "schema_migrations" ||
		d.Database != "(version bigint NOT NULL, dirty boolean NOT NULL)" {
		t.Errorf("difference = %+v", d)
	}
}
