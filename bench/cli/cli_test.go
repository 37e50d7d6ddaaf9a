// Package cli benchmarks the built `upgrader` binary on real test hosts, the
// Go side of scripts/bench.sh (issue #10): the targets that concern upgrader
// alone, as `go test -bench` benchmarks.
//
//	go test -run XXX -bench . -benchtime 5x ./bench/cli/
//
// Each benchmark starts its own test hosts (internal/testbed, login as deploy)
// and execs the binary as a user would; setup is outside the timer.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// bed starts n hosts named h1..hn and writes their hosts.hcl into dir.
func bed(b *testing.B, dir string, n int) *testbed.Testbed {
	b.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i+1)
	}
	tb := testbed.New(b, names...)
	if err := tb.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
		b.Fatal(err)
	}
	return tb
}

// upgrader runs the binary and fails the benchmark on a non-zero exit.
func upgrader(b *testing.B, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testbin.Upgrader(b), args...).CombinedOutput()
	if err != nil {
		b.Fatalf("upgrader %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func write(b *testing.B, path, text string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
}

// W2: a step of 100 `run` actions on one host, the whole CLI (start, config,
// connect, journal). Issue #10: within 2x of the one-script floor (~0.2-0.4 s
// here) and at most 0.5x the ControlMaster loop (~1-4.5 s here).
func BenchmarkApply_100commands_1host(b *testing.B) {
	dir := b.TempDir()
	bed(b, dir, 1)
	var sb strings.Builder
	sb.WriteString("step \"w2\" {\n  host            = host.h1\n  backup_required = false # the step is measured, not the backup\n")
	for range 100 {
		sb.WriteString("  run {\n    command = \"stat -c %s /etc/passwd\"\n  }\n")
	}
	sb.WriteString("}\n")
	write(b, filepath.Join(dir, "main.hcl"), sb.String())
	testbin.Upgrader(b)
	b.ResetTimer()
	for range b.N {
		out := upgrader(b, "apply", "-auto-approve", "-no-color", dir)
		if !strings.Contains(out, "done in") {
			b.Fatalf("apply did not finish:\n%s", out)
		}
	}
}

// W6: re-plan when nothing changed (every file `=`, the command skipped by
// its guard) on 16 hosts. Issue #10: under 1 second.
func BenchmarkPlan_unchanged_16hosts(b *testing.B) {
	const n = 16
	dir := b.TempDir()
	bed(b, dir, n)
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host.h%d", i+1)
	}
	write(b, filepath.Join(dir, "small.txt"), "hello\n")
	write(b, filepath.Join(dir, "app.conf.tmpl"), "version = ${version}\n")
	write(b, filepath.Join(dir, "main.hcl"), fmt.Sprintf(`step "w6" {
  hosts           = [%s]
  backup_required = false # the step is measured, not the backup
  upload {
    source      = "small.txt"
    destination = "/opt/small.txt"
  }
  template {
    source      = "app.conf.tmpl"
    destination = "/opt/app.conf"
    vars        = { version = "1.2.3" }
  }
  run {
    command = "stat -c %%s /opt/app.conf"
    creates = "/opt/app.conf"
  }
}
`, strings.Join(hosts, ", ")))
	upgrader(b, "apply", "-auto-approve", "-no-color", dir)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		out := upgrader(b, "plan", "-no-color", dir)
		if !strings.Contains(out, fmt.Sprintf("Plan: %d unchanged, %d skipped.", 2*n, n)) {
			b.Fatalf("re-plan is not all unchanged:\n%s", out)
		}
	}
	if per := time.Since(start) / time.Duration(b.N); per > time.Second {
		b.Logf("W6 target missed: %v per plan of %d hosts (target < 1s)", per.Round(time.Millisecond), n)
	}
}
