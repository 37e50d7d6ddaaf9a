package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/commandcheck"
	runcmd "github.com/upgrader-dev/upgrader/modules/run"
	"github.com/upgrader-dev/upgrader/modules/template"
	"github.com/upgrader-dev/upgrader/modules/upload"
)

// These tests run the real run, upload and command modules over SSH against
// real test hosts (internal/testbed); the hosts' files are the proof.

func realRegistry() *modules.Registry {
	r := modules.NewRegistry()
	r.RegisterAction(&runcmd.Run{})
	r.RegisterAction(&upload.Upload{})
	r.RegisterAction(&template.Template{})
	r.RegisterProbe(&commandcheck.Command{})
	return r
}

// hostConfig starts the hosts and copies testdata/hosts/NAME plus the
// hosts.hcl the testbed writes into a configuration directory.
func hostConfig(t *testing.T, files []string, hosts ...string) (*testbed.Testbed, string) {
	t.Helper()
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bed, err := testbed.Start(ctx, testbed.Options{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bed.Close() })
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", "hosts", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := bed.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	return bed, dir
}

func loadReal(t *testing.T, dir string) Options {
	t.Helper()
	reg := realRegistry()
	cfg, ds := lang.Load(dir, Schemas(reg), lang.Options{Env: map[string]string{}, Apply: true})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	if ds := Validate(cfg, reg); ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	hosts := NewSSHHosts(ssh.Options{})
	t.Cleanup(func() { hosts.Close() })
	return Options{Config: cfg, Registry: reg, StateDir: filepath.Join(dir, ".upgrader"), Hosts: hosts, UndoBackoff: 10 * time.Millisecond}
}

func hostFile(t *testing.T, h *testbed.Host, path string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "cat "+path+" 2>/dev/null || true")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHosts_failureInFourthOfSixStepsUndoesThreeTwoOne(t *testing.T) {
	bed, dir := hostConfig(t, []string{"six_steps.hcl", "app-v2.conf"}, "web", "db")
	for _, h := range bed.Hosts() {
		if _, err := h.Exec(context.Background(), "mkdir -p /tmp/app && echo 'version = 1' > /tmp/app/app.conf && chown -R deploy /tmp/app"); err != nil {
			t.Fatal(err)
		}
	}
	opts := loadReal(t, dir)
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "step.s4" {
		t.Fatalf("outcome %s, failed %s: %s", sum.Outcome, sum.Failed, sum.Error)
	}
	// s4 runs in batches of one: web failed, db never started it.
	want := map[string]string{
		"web": "undo-4\nundo-3\nundo-1 app.conf=version = 1\n",
		"db":  "undo-3\nundo-1 app.conf=version = 1\n",
	}
	for _, h := range bed.Hosts() {
		if got := hostFile(t, h, "/tmp/app/undo"); got != want[h.Name] {
			t.Errorf("%s: /tmp/app/undo =\n%s\nwant\n%s", h.Name, got, want[h.Name])
		}
		if got := hostFile(t, h, "/tmp/app/app.conf"); got != "version = 1\n" {
			t.Errorf("%s: app.conf = %q: upload not undone", h.Name, got)
		}
		out, _ := h.Exec(context.Background(), "ls /tmp/app")
		for _, f := range []string{"s1", "s3", "s4", "s5", "s6"} {
			if strings.Contains(" "+strings.Join(strings.Fields(out), " ")+" ", " "+f+" ") {
				t.Errorf("%s: /tmp/app/%s still there (ls: %s)", h.Name, f, strings.Fields(out))
			}
		}
	}
}

func TestHosts_escalationRollsBackEarlierPhase(t *testing.T) {
	bed, dir := hostConfig(t, []string{"escalate.hcl"}, "web", "db")
	opts := loadReal(t, dir)
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeRolledBack || sum.Failed != "step.web_verify" {
		t.Fatalf("outcome %s, failed %s: %s", sum.Outcome, sum.Failed, sum.Error)
	}
	web, db := bed.Host("web"), bed.Host("db")
	if got := hostFile(t, web, "/tmp/app/version"); got != "web-v1\n" {
		t.Errorf("web version %q", got)
	}
	if got := hostFile(t, db, "/tmp/app/version"); got != "db-v1\n" {
		t.Errorf("db version %q: the earlier phase was not rolled back", got)
	}
	rs, _ := Replay(opts.StateDir, sum.Run)
	if rs.Nodes["step.db_upgrade"].State != StateUndone {
		t.Errorf("db_upgrade state %s", rs.Nodes["step.db_upgrade"].State)
	}
}
