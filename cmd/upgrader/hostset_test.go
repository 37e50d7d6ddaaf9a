package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

// TestApply_hostSet: four real hosts declared by one host block with
// for_each (from a map variable given in a -var-file); a step on
// values(host.web) changes every one of them, a step on host.web["w3"]
// only that one.
func TestApply_hostSet(t *testing.T) {
	bed := testbed.New(t, "w1", "w2", "w3", "w4")
	dir := t.TempDir()
	var conn, vars strings.Builder
	h1 := bed.Host("w1")
	fmt.Fprintf(&conn, "connection {\n  user = %q\n  private_key_file = %q\n  known_hosts_file = %q\n  ssh_config = \"\"\n}\n", h1.User, h1.KeyFile, h1.KnownHostsFile)
	vars.WriteString("web = {\n")
	for _, n := range []string{"w1", "w2", "w3", "w4"} {
		fmt.Fprintf(&vars, "  %s = %q\n", n, bed.Host(n).Address)
	}
	vars.WriteString("}\n")
	src := conn.String() + `
variable "web" { type = map(string) }

host "web" {
  for_each = var.web
  address  = each.value
  labels   = { name = each.key }
}

step "all" {
  hosts           = values(host.web)
  backup_required = false
  run {
    command = "echo upgraded > /opt/app/state"
  }
}

step "third" {
  host            = host.web["w3"]
  depends_on      = [step.all]
  backup_required = false
  run {
    command = "echo special > /opt/app/state"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.vars.hcl"), []byte(vars.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"w1", "w2", "w3", "w4"} {
		if _, err := bed.Host(n).Exec(ctx, "mkdir -p /opt/app && echo old > /opt/app/state && chown -R deploy /opt/app"); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runCLI(t, "plan", "-offline", "-no-color", "-var-file", filepath.Join(dir, "web.vars.hcl"), dir)
	if code != exitOK || !strings.Contains(out, "step.all  hosts: w1, w2, w3, w4") || !strings.Contains(out, "step.third  hosts: w3") {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "apply", "-auto-approve", "-no-color", "-var-file", filepath.Join(dir, "web.vars.hcl"), dir); code != exitOK {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}
	for n, want := range map[string]string{"w1": "upgraded", "w2": "upgraded", "w3": "special", "w4": "upgraded"} {
		got, err := bed.Host(n).Exec(ctx, "cat /opt/app/state")
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s: /opt/app/state = %q (%v), want %s", n, got, err, want)
		}
	}
}
