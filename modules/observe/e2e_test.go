package observe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testbin"
)

// End-to-end through the real CLI, executor, journal and SSH transport:
// `upgrader apply` of testdata/e2e/window.hcl on a real test host.

func TestMain(m *testing.M) { testbin.Main(m) }

type e2e struct {
	bed      *testbed.Testbed
	web      *testbed.Host
	dir      string
	stateDir string
}

func newE2E(t *testing.T) *e2e {
	bed := testbed.New(t, "web")
	e := &e2e{bed: bed, web: bed.Host("web"), dir: t.TempDir()}
	e.stateDir = filepath.Join(e.dir, ".upgrader")
	src, err := os.ReadFile("testdata/e2e/window.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "window.hcl"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bed.WriteHostsHCL(filepath.Join(e.dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	hexec(t, e.web, "mkdir -p /var/log/app && : > "+appLog+" && chmod 644 "+appLog)
	return e
}

func (e *e2e) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	c := exec.Command(testbin.Upgrader(t), args...)
	out, err := c.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func (e *e2e) version(t *testing.T) string {
	return strings.TrimSpace(hexec(t, e.web, "cat /tmp/app/version 2>/dev/null || true"))
}

// samples counts the sample lines of metrics.jsonl, once the run exists.
func (e *e2e) samples() (run string, n int) {
	run, _ = journal.Latest(e.stateDir)
	if run == "" {
		return "", 0
	}
	_ = ReadRecords(MetricsFile(e.stateDir, run), func(r *Record) error {
		if r.Type == RecordSample {
			n++
		}
		return nil
	})
	return run, n
}

func (e *e2e) waitSamples(t *testing.T, want int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		run, n := e.samples()
		if n >= want {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d samples after 60s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A CPU burner breaches max_cpu_percent: apply exits 1 and the switch is
// rolled back on the host.
func TestObserve_e2eCPUBreachRollsBack(t *testing.T) {
	e := newE2E(t)
	pids := strings.Fields(hexec(t, e.web, "for i in 1 2; do nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!; done"))
	t.Cleanup(func() { _, _ = e.web.Exec(context.Background(), "kill "+strings.Join(pids, " ")) })
	code, out := e.run(t, "apply", "-auto-approve", "-no-color", "-var", "max_cpu=90", e.dir)
	if code != 1 {
		t.Fatalf("apply exit %d, want 1 (failed, rolled back)\n%s", code, out)
	}
	if !strings.Contains(out, "cpu") || !strings.Contains(out, "max_cpu_percent 90%") {
		t.Errorf("output does not say which bound:\n%s", out)
	}
	if v := e.version(t); v != "1.0" {
		t.Errorf("version on the host %q, want 1.0 (rolled back)\n%s", v, out)
	}
}

// upgrader killed mid-window (kill -9), then `upgrader resume`: the window
// ends at its original deadline and the run is done; status shows the
// window while it is open.
func TestObserve_e2eKillResume(t *testing.T) {
	e := newE2E(t)
	first := exec.Command(testbin.Upgrader(t), "apply", "-auto-approve", "-no-color", "-var", "duration=8s", e.dir)
	var out bytes.Buffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			first.Process.Kill()
			first.Wait()
		}
	})
	run := e.waitSamples(t, 3)
	code, status := e.run(t, "status", "-no-color", e.dir)
	if code != 0 || !strings.Contains(status, "observe.soak: open, ") || !strings.Contains(status, " left (until ") {
		t.Errorf("status during the window: exit %d\n%s", code, status)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	done = true
	var deadline time.Time
	_ = ReadRecords(MetricsFile(e.stateDir, run), func(r *Record) error {
		if r.Type == RecordWindow && deadline.IsZero() {
			deadline = *r.Deadline
		}
		return nil
	})
	hexec(t, e.web, "echo 'INFO while upgrader was down' >> "+appLog)
	time.Sleep(time.Second)

	code, rout := e.run(t, "resume", "-no-color", e.dir)
	end := time.Now()
	if code != 0 {
		t.Fatalf("resume exit %d\n%s\nfirst apply:\n%s", code, rout, out.String())
	}
	if end.Before(deadline) || end.Sub(deadline) > 3*time.Second {
		t.Errorf("resumed run ended at %s, the window's original deadline is %s", end.Format(time.StampMilli), deadline.Local().Format(time.StampMilli))
	}
	if v := e.version(t); v != "2.0" {
		t.Errorf("version %q, want 2.0", v)
	}
	code, status = e.run(t, "status", "-no-color", e.dir)
	if code != 0 || !strings.Contains(status, "observe.soak: passed at ") {
		t.Errorf("status after the window: exit %d\n%s", code, status)
	}
	t.Logf("resume:\n%s\nstatus:\n%s", rout, status)
}

// `upgrader approve RUN observe.soak` ends a long window early as passed.
func TestObserve_e2eApprove(t *testing.T) {
	e := newE2E(t)
	apply := exec.Command(testbin.Upgrader(t), "apply", "-auto-approve", "-no-color", "-var", "duration=72h", e.dir)
	var out bytes.Buffer
	apply.Stdout, apply.Stderr = &out, &out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- apply.Wait() }()
	t.Cleanup(func() { apply.Process.Kill(); <-exited })
	run := e.waitSamples(t, 2)
	if code, aout := e.run(t, "approve", e.dir, run, "observe.soak"); code != 0 {
		t.Fatalf("approve: %d %s", code, aout)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("apply: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the window did not end after approve\n%s", out.String())
	}
	if !strings.Contains(out.String(), "approved") {
		t.Errorf("output does not say approved:\n%s", out.String())
	}
	_, status := e.run(t, "status", "-no-color", e.dir)
	if !strings.Contains(status, "observe.soak: approved at ") {
		t.Errorf("status:\n%s", status)
	}
}
