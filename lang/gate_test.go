package lang_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/lang"
)

// A gate's timeout, on_timeout (default reject) and approvers.
func TestLoad_gateAttributes(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "board" {
  default = ["alice", "bob"]
}
gate "go" {
  message   = "Go?"
  timeout   = "8h"
  approvers = var.board
}
gate "night" {
  timeout    = "30m"
  on_timeout = "approve"
}
gate "plain" {}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	g := cfg.Nodes["gate.go"].Gate
	if g.Timeout != 8*time.Hour || g.OnTimeout != "reject" || !slices.Equal(g.Approvers, []string{"alice", "bob"}) {
		t.Errorf("gate.go = %+v", g)
	}
	if !g.MayDecide("bob") || g.MayDecide("mallory") {
		t.Errorf("MayDecide: bob %v, mallory %v", g.MayDecide("bob"), g.MayDecide("mallory"))
	}
	if g := cfg.Nodes["gate.night"].Gate; g.Timeout != 30*time.Minute || g.OnTimeout != "approve" {
		t.Errorf("gate.night = %+v", g)
	}
	if g := cfg.Nodes["gate.plain"].Gate; g.Timeout != 0 || g.OnTimeout != "" || !g.MayDecide("anyone") {
		t.Errorf("gate.plain = %+v", g)
	}
}
