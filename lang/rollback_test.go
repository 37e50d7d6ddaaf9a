package lang_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/upgrader-dev/upgrader/lang"
)

// A module node (migrate) may carry a rollback block of actions; what they
// reference orders the graph like the node's own arguments.
func TestLoad_moduleNodeRollback(t *testing.T) {
	dir := t.TempDir()
	src := `
database "prod" {
  driver = "postgres"
  dsn    = "postgres://u@198.51.100.9/prod"
}
backup "proddb" {
  database = database.prod
}
migrate "prod" {
  database = database.prod
  dir      = "migrations"
  rollback {
    restore {
      backup = backup.proddb
    }
  }
}
migrate "plain" {
  database = database.prod
  dir      = "migrations"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	n := cfg.Nodes["migrate.prod"]
	if len(n.Rollback) != 1 || n.Rollback[0].Kind != "restore" || n.Rollback[0].Loaded == nil || n.Rollback[0].DeclRange.Start.Line != 13 {
		t.Fatalf("rollback = %+v", n.Rollback)
	}
	if !slices.Contains(n.DependsOn, "backup.proddb") {
		t.Errorf("depends on %v, want backup.proddb (named in the rollback block)", n.DependsOn)
	}
	if n.Loaded == nil || !n.Loaded.Value.Type().HasAttribute("dir") {
		t.Errorf("the module body lost its arguments: %#v", n.Loaded)
	}
	if r := cfg.Nodes["migrate.plain"].Rollback; r != nil {
		t.Errorf("no rollback block: Rollback = %v, want nil", r)
	}
}
