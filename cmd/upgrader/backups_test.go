package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

const backupsHCL = `backup "web" {
  host  = host.web
  sudo  = true
  paths = ["/opt/app", "/etc/app"]
}

step "upgrade" {
  host = host.web
  run {
    command = "echo v2 | sudo tee /opt/app/version"
  }
  rollback {
    restore {
      backup = backup.web
    }
  }
}
`

// TestBackups_listVerifyRestore: apply takes a backup on a real host; list
// and verify see it; restore puts it back; a flipped byte makes verify fail
// and restore refuse before touching the host.
func TestBackups_listVerifyRestore(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	ctx := context.Background()
	dir := t.TempDir()
	if err := bed.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(backupsHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Exec(ctx, "mkdir -p /opt/app /etc/app && echo v1 > /opt/app/version && echo conf > /etc/app/app.conf && chmod 600 /etc/app/app.conf"); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "apply", "-auto-approve", "-no-color", dir); code != exitOK {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}

	code, out, errs := runCLI(t, "backups", "list", "-json", dir)
	if code != exitOK {
		t.Fatalf("list -json: %d %s", code, errs)
	}
	var e backupJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &e); err != nil || !e.Complete || e.Manifest == nil || e.Manifest.Host != "web" {
		t.Fatalf("list -json: %v\n%s", err, out)
	}
	run, _, _ := strings.Cut(e.ID, "/")

	code, out, _ = runCLI(t, "backups", "list", dir)
	if code != exitOK || !strings.Contains(out, e.ID) || !strings.Contains(out, "host web: /opt/app, /etc/app") || !strings.Contains(out, "complete") {
		t.Errorf("list: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "backups", "verify", dir)
	if code != exitOK || !strings.Contains(out, "ok      "+e.ID) || !strings.Contains(out, "1 verified, 0 failed") {
		t.Errorf("verify: %d\n%s", code, out)
	}

	if _, err := h.Exec(ctx, "echo v3 > /opt/app/version && rm /etc/app/app.conf && touch /opt/app/junk"); err != nil {
		t.Fatal(err)
	}
	// Not on a terminal: a restore needs -auto-approve.
	if code, _, errs := runCLI(t, "backups", "restore", run, "web", dir); code != exitInvalid || !strings.Contains(errs, "-auto-approve") {
		t.Errorf("restore without -auto-approve: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, "backups", "restore", "-auto-approve", run, "web", dir); code != exitOK {
		t.Fatalf("restore: %d\n%s\n%s", code, out, errs)
	}
	got, err := h.Exec(ctx, "cat /opt/app/version; stat -c %a /etc/app/app.conf; ls /opt/app")
	if err != nil || got != "v1\n600\nversion\n" {
		t.Errorf("after restore: %q %v", got, err)
	}

	// Corrupt the archive: verify fails, restore refuses and changes nothing.
	flip(t, filepath.Join(e.Dir, e.Manifest.Archive))
	code, out, _ = runCLI(t, "backups", "verify", dir)
	if code != exitFailedRolledBack || !strings.Contains(out, "FAILED  "+e.ID) || !strings.Contains(out, "sha256 mismatch") {
		t.Errorf("verify of a corrupted archive: %d\n%s", code, out)
	}
	if _, err := h.Exec(ctx, "echo v4 > /opt/app/version"); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "backups", "restore", "-auto-approve", e.ID, dir)
	if code != exitFailedRolledBack || !strings.Contains(errs, "nothing was restored") {
		t.Errorf("restore of a corrupted archive: %d %s", code, errs)
	}
	if got, _ := h.Exec(ctx, "cat /opt/app/version"); got != "v4\n" {
		t.Errorf("a refused restore changed the host: %q", got)
	}
}

func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackups_usage: wrong arguments are usage errors (exit 2) that say why.
func TestBackups_usage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(`host "web" {
  address = "198.51.100.9"
}
`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backups"}, "Usage:"},
		{[]string{"backups", "frobnicate"}, "unknown subcommand"},
		{[]string{"backups", "restore", "-auto-approve", "onlyrun"}, "Usage: upgrader backups restore"},
		{[]string{"backups", "restore", "-auto-approve", "r1", "web", dir}, "no backup r1/web"},
		{[]string{"backups", "restore", "-auto-approve", "../../x", "web", dir}, "is not RUN/NAME"},
		{[]string{"backups", "verify", dir, "r9/none"}, "no backup r9/none"},
	} {
		code, _, errs := runCLI(t, c.args...)
		if code != exitInvalid || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q, want exit 2 and %q", c.args, code, errs, c.want)
		}
	}
	if code, out, _ := runCLI(t, "backups", "list", dir); code != exitOK || !strings.Contains(out, "No backups") {
		t.Errorf("list of an empty state: %d %q", code, out)
	}
}
