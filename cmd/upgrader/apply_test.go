package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testbin"
)

// configDir copies testdata/apply files into a fresh configuration directory,
// with the test hosts' hosts.hcl when bed is not nil.
func configDir(t *testing.T, bed *testbed.Testbed, files ...string) string {
	t.Helper()
	return testdataDir(t, bed, "apply", files...)
}

// testdataDir copies files of testdata/SUB into a new configuration
// directory, with the bed's hosts.hcl when bed is not nil.
func testdataDir(t *testing.T, bed *testbed.Testbed, sub string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", sub, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if bed != nil {
		if err := bed.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startBed(t *testing.T, hosts ...string) *testbed.Testbed {
	t.Helper()
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bed, err := testbed.Start(ctx, testbed.Options{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bed.Close() })
	return bed
}

func upgrader(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = realMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestMain(m *testing.M) { testbin.Main(m) }

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostCat(t *testing.T, h *testbed.Host, path string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "cat "+path+" 2>/dev/null || true")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// kill -9 of a real `upgrader apply` during a long step; a second apply is
// refused with exit 4 while it runs; the journal gets a torn last line;
// resume finishes without re-running the completed steps.
func TestApply_killResumeLockAndTornJournal(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	dir := configDir(t, bed, "counters.hcl")
	bin := testbin.Upgrader(t)

	var out bytes.Buffer
	first := exec.Command(bin, "apply", "-auto-approve", "-no-color", dir)
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			first.Process.Kill()
			first.Wait()
		}
	})
	waitFor(t, "the long step to start on the host", 60*time.Second, func() bool { return hostCat(t, web, "/tmp/app/c3") == "1" })

	// A second apply while the first holds the lock: exit 4, naming the holder.
	code, _, stderr := upgrader("apply", "-auto-approve", dir)
	stateDir := filepath.Join(dir, ".upgrader")
	run, err := journal.Latest(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	me := journal.Me("")
	if code != exitLocked {
		t.Fatalf("second apply exit %d, want 4; stderr: %s", code, stderr)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", first.Process.Pid), run, me.User + "@" + me.Host, "since"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second apply's message %q does not name %q", stderr, want)
		}
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killed = true

	// The dead holder's lock is stale: apply says so and points to unlock/resume.
	code, _, stderr = upgrader("apply", "-auto-approve", dir)
	if code != exitLocked || !strings.Contains(stderr, "no longer running") || !strings.Contains(stderr, "upgrader unlock") {
		t.Fatalf("apply after kill: exit %d: %s", code, stderr)
	}

	// Simulate dying mid-write: a torn last line.
	jf, err := os.OpenFile(journal.Path(stateDir, run), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	jf.WriteString(`{"ts":"2026-11-28T10:00:00Z","type":"node_fini`)
	jf.Close()

	code, stdout, stderr := upgrader("status", "-json", dir)
	if code != 0 || !strings.Contains(stdout, `"state": "interrupted"`) || !strings.Contains(stdout, "journal_torn") {
		t.Fatalf("status: %d %s %s", code, stdout, stderr)
	}

	if _, err := web.Exec(context.Background(), "touch /tmp/app/go"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = upgrader("resume", "-no-color", dir)
	if code != 0 {
		t.Fatalf("resume exit %d\n%s\n%s", code, stdout, stderr)
	}
	// c1 and c2 completed before the kill: not run again. long was in
	// flight and is idempotent: run again. c4 ran once, on resume.
	for f, want := range map[string]string{"c1": "1", "c2": "1", "c3": "2", "c4": "1"} {
		if got := hostCat(t, web, "/tmp/app/"+f); got != want {
			t.Errorf("counter %s = %q, want %q", f, got, want)
		}
	}
	rs, err := executor.Replay(stateDir, run)
	if err != nil || rs.Outcome != executor.OutcomeDone {
		t.Fatalf("replay after resume: %v %+v", err, rs)
	}
	if _, err := journal.ReadLock(stateDir); err == nil {
		t.Error("lock left after resume")
	}
}

// An in-flight run action without creates/unless/idempotent is not repeated
// on its own: resume stops and offers -retry or rollback.
func TestResume_unsafeInFlightStops(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	src, _ := os.ReadFile(filepath.Join("testdata", "apply", "counters.hcl"))
	dir := configDir(t, bed)
	os.WriteFile(filepath.Join(dir, "counters.hcl"), bytes.Replace(src, []byte("idempotent = true"), []byte("idempotent = false"), 1), 0o644)
	bin := testbin.Upgrader(t)
	first := exec.Command(bin, "apply", "-auto-approve", dir)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Wait()
	waitFor(t, "the long step", 60*time.Second, func() bool { return hostCat(t, web, "/tmp/app/c3") == "1" })
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	// The dead run's lock is stale: unlock clears it (once).
	if code, out, errs := upgrader("unlock", dir); code != 0 || !strings.Contains(out, "Cleared the lock of run") {
		t.Fatalf("unlock: %d %s %s", code, out, errs)
	}
	if code, _, errs := upgrader("unlock", dir); code != exitInvalid || !strings.Contains(errs, "not locked") {
		t.Fatalf("second unlock: %d %s", code, errs)
	}
	code, _, stderr := upgrader("resume", dir)
	if code != exitInvalid || !strings.Contains(stderr, "-retry step.long") || !strings.Contains(stderr, "upgrader rollback") ||
		!strings.Contains(stderr, "no creates, unless or idempotent = true") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	web.Exec(context.Background(), "touch /tmp/app/go")
	code, stdout, stderr := upgrader("resume", "-retry", "step.long", dir)
	if code != 0 {
		t.Fatalf("resume -retry: %d\n%s\n%s", code, stdout, stderr)
	}
	if got := hostCat(t, web, "/tmp/app/c3"); got != "2" {
		t.Errorf("c3 = %s", got)
	}
}

func TestApply_staleSavedPlanRefused(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	if _, err := web.Exec(context.Background(), "mkdir -p /tmp/app && echo 'version = 1' > /tmp/app/app.conf && chown -R deploy /tmp/app"); err != nil {
		t.Fatal(err)
	}
	dir := configDir(t, bed, "upload.hcl", "app-v2.conf")
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, out, errs := upgrader("plan", "-out", planFile, dir); code != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errs)
	}
	web.Exec(context.Background(), "echo 'version = 1 (edited by hand)' > /tmp/app/app.conf")
	code, _, stderr := upgrader("apply", planFile)
	if code != exitInvalid || !strings.Contains(stderr, "stale") || !strings.Contains(stderr, "/tmp/app/app.conf") || !strings.Contains(stderr, "was") {
		t.Fatalf("stale plan: exit %d: %s", code, stderr)
	}
	if got := hostCat(t, web, "/tmp/app/app.conf"); got != "version = 1 (edited by hand)" {
		t.Fatalf("a stale plan changed the host: %q", got)
	}
	// A fresh saved plan applies without a question.
	if code, out, errs := upgrader("plan", "-out", planFile, dir); code != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := upgrader("apply", planFile); code != 0 {
		t.Fatalf("apply fresh plan: %d\n%s\n%s", code, out, errs)
	}
	if got := hostCat(t, web, "/tmp/app/app.conf"); got != "version = 2" {
		t.Errorf("app.conf = %q", got)
	}
	// The configuration changed: refused too.
	if code, _, _ := upgrader("plan", "-out", planFile, dir); code != 0 {
		t.Fatal("plan")
	}
	os.WriteFile(filepath.Join(dir, "upload.hcl"), append(mustReadFile(t, filepath.Join(dir, "upload.hcl")), []byte("\n# edited\n")...), 0o644)
	code, _, stderr = upgrader("apply", planFile)
	if code != exitInvalid || !strings.Contains(stderr, "configuration changed") {
		t.Fatalf("changed config: exit %d: %s", code, stderr)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApply_noTerminalNoAutoApproveRefused(t *testing.T) {
	dir := configDir(t, nil, "gate.hcl")
	code, _, stderr := upgrader("apply", dir)
	if code != exitInvalid || !strings.Contains(stderr, "not on a terminal") || !strings.Contains(stderr, "-auto-approve") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if runs, _ := journal.Runs(filepath.Join(dir, ".upgrader")); len(runs) != 0 {
		t.Fatalf("a run was started: %v", runs)
	}
}

// -json prints one event per line; a gate waits for `upgrader approve`.
func TestApply_jsonEventsAndApprove(t *testing.T) {
	dir := configDir(t, nil, "gate.hcl")
	stateDir := filepath.Join(dir, ".upgrader")
	go func() {
		var run string
		waitFor(t, "the run", 30*time.Second, func() bool { run, _ = journal.Latest(stateDir); return run != "" })
		time.Sleep(200 * time.Millisecond)
		if code, out, errs := upgrader("approve", dir, run, "go"); code != 0 {
			t.Errorf("approve: %d %s %s", code, out, errs)
		}
	}()
	code, stdout, stderr := upgrader("apply", "-auto-approve", "-json", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		types = append(types, ev["type"].(string))
	}
	got := strings.Join(types, " ")
	want := "plan run_started node_started waiting approved node_output node_finished run_finished summary"
	if got != want {
		t.Errorf("event types\n got %s\nwant %s", got, want)
	}
	code, stdout, _ = upgrader("status", dir)
	if code != 0 || !strings.Contains(stdout, "gate.go") || !strings.Contains(stdout, "done") {
		t.Errorf("status: %d %s", code, stdout)
	}
}

func TestRollback_finishedRunOnHost(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	if _, err := web.Exec(context.Background(), "mkdir -p /tmp/app && echo 'version = 1' > /tmp/app/app.conf && chown -R deploy /tmp/app"); err != nil {
		t.Fatal(err)
	}
	dir := configDir(t, bed, "upload.hcl", "app-v2.conf")
	if code, out, errs := upgrader("apply", "-auto-approve", dir); code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}
	if got := hostCat(t, web, "/tmp/app/app.conf"); got != "version = 2" {
		t.Fatalf("after apply: %q", got)
	}
	code, out, errs := upgrader("rollback", "-no-color", dir)
	if code != exitOK || !strings.Contains(out, "was done and has been rolled back on request") || strings.Contains(out, "failed at") {
		t.Fatalf("rollback: %d\n%s\n%s", code, out, errs)
	}
	if got := hostCat(t, web, "/tmp/app/app.conf"); got != "version = 1" {
		t.Errorf("after rollback: %q", got)
	}
	code, out, _ = upgrader("status", "-no-color", dir)
	if code != 0 || !strings.Contains(out, "rolled_back") || !strings.Contains(out, "undone") {
		t.Errorf("status: %d %s", code, out)
	}
	if code, _, errs := upgrader("rollback", dir); code != exitInvalid || !strings.Contains(errs, "already rolled back") {
		t.Errorf("second rollback: %d %s", code, errs)
	}
}

// apply -detach runs in the background (its own session, output in
// runs/RUN/output.log) and waits at the gate for `upgrader approve`.
func TestApply_detach(t *testing.T) {
	dir := configDir(t, nil, "gate.hcl")
	bin := testbin.Upgrader(t)
	out, err := exec.Command(bin, "apply", "-detach", "-auto-approve", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "started in the background") {
		t.Fatalf("%v: %s", err, out)
	}
	stateDir := filepath.Join(dir, ".upgrader")
	var run string
	waitFor(t, "the background run to wait at the gate", 30*time.Second, func() bool {
		run, _ = journal.Latest(stateDir)
		if run == "" {
			return false
		}
		b, _ := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), "output.log"))
		return strings.Contains(string(b), "waiting")
	})
	li, err := journal.ReadLock(stateDir)
	if err != nil || li.Run != run {
		t.Fatalf("lock %+v %v", li, err)
	}
	t.Cleanup(func() { syscall.Kill(li.PID, syscall.SIGKILL) })
	if sid, _ := unix.Getsid(li.PID); sid != li.PID {
		t.Errorf("background run is not in a session of its own (sid %d, pid %d)", sid, li.PID)
	}
	if code, _, errs := upgrader("approve", dir, run, "gate.go"); code != 0 {
		t.Fatal(errs)
	}
	waitFor(t, "the background run to finish", 30*time.Second, func() bool {
		rs, err := executor.Replay(stateDir, run)
		return err == nil && rs.Outcome == executor.OutcomeDone
	})
	b, _ := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), "output.log"))
	if !strings.Contains(string(b), "done") {
		t.Errorf("output.log:\n%s", b)
	}
}

// An undo that keeps failing is retried, then the run ends
// rollback_incomplete (exit 3) saying exactly what is left.
func TestApply_rollbackIncompleteExit3(t *testing.T) {
	bed := startBed(t, "web")
	web := bed.Host("web")
	dir := configDir(t, bed, "undo_fails.hcl")
	code, stdout, stderr := upgrader("apply", "-auto-approve", "-no-color", dir)
	if code != exitRollbackIncomplete {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"ROLLBACK IS INCOMPLETE", "Left to undo by hand", "- step.a (undo failed:", "exit 7", "upgrader rollback"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if got := hostCat(t, web, "/tmp/app/undo-tries"); got != "tried\ntried\ntried" {
		t.Errorf("undo tried %q, want 3 times", got)
	}
	code, stdout, _ = upgrader("status", "-json", dir)
	if code != 0 || !strings.Contains(stdout, `"state": "rollback_incomplete"`) || !strings.Contains(stdout, `"undo_failed"`) {
		t.Errorf("status: %s", stdout)
	}
}

// Plan never changes a host: every file under the hosts' private
// directories (names, sizes, modes, times, hashes) is the same after it.
func TestPlan_changesNothingOnHosts(t *testing.T) {
	bed := startBed(t, "web", "db")
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, h := range bed.Hosts() {
			s, err := h.Exec(context.Background(), `find /opt /etc/app /var/log/app /tmp /home/deploy -xdev -printf '%p %s %m %T@ %C@\n' | sort; find /opt /etc/app /var/log/app /tmp /home/deploy -xdev -type f -exec sha256sum {} + | sort`)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = s
		}
		return out
	}
	for _, h := range bed.Hosts() {
		h.Exec(context.Background(), "mkdir -p /tmp/app && echo 'version = 1' > /tmp/app/app.conf && chown -R deploy /tmp/app")
	}
	dir := configDir(t, bed, "probes.hcl", "app-v2.conf")
	before := snapshot()
	code, stdout, stderr := upgrader("plan", "-no-color", dir)
	if code != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"~ web  #1 /tmp/app/app.conf", "~ db   #1 /tmp/app/app.conf", "touch /tmp/app/ran"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	after := snapshot()
	for h := range before {
		if before[h] != after[h] {
			t.Errorf("plan changed host %s:\nbefore\n%s\nafter\n%s", h, before[h], after[h])
		}
	}
}

// A host that cannot be reached makes plan fail naming it, and apply
// change nothing anywhere.
func TestPlan_unreachableHostNamed(t *testing.T) {
	bed := startBed(t, "web", "db")
	db := bed.Host("db")
	for _, h := range bed.Hosts() {
		h.Exec(context.Background(), "mkdir -p /tmp/app && echo 'version = 1' > /tmp/app/app.conf && chown -R deploy /tmp/app")
	}
	if err := db.StopSSH(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := configDir(t, bed, "probes.hcl", "app-v2.conf")
	code, stdout, stderr := upgrader("plan", "-no-color", dir)
	if code != exitFailedRolledBack || !strings.Contains(stdout, `host "db"`) || strings.Contains(stdout+stderr, "goroutine") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = upgrader("apply", "-auto-approve", dir)
	if code != exitFailedRolledBack || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	if got := hostCat(t, bed.Host("web"), "/tmp/app/app.conf"); got != "version = 1" {
		t.Errorf("web changed although db was down: %q", got)
	}
}

// apply -detach of a saved plan with a sensitive -var: the background
// process gets the value on a pipe, so no process's argv ever holds it, and
// it runs with it (the host receives the secret).
func TestApply_detachSecretNotInArgv(t *testing.T) {
	const canary = "C4NARY-detach-'tok en'"
	bed := startBed(t, "web")
	web := bed.Host("web")
	dir := configDir(t, bed, "secret_detach.hcl")
	bin := testbin.Upgrader(t)
	planFile := filepath.Join(dir, "saved.plan")
	if out, err := exec.Command(bin, "plan", "-no-color", "-out", planFile, "-var", "token="+canary, dir).CombinedOutput(); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "apply", "-detach", "-var", "token="+canary, planFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "started in the background") {
		t.Fatalf("%v: %s", err, out)
	}
	stateDir := filepath.Join(dir, ".upgrader")
	var run string
	waitFor(t, "the background run to wait at the gate", 30*time.Second, func() bool {
		run, _ = journal.Latest(stateDir)
		b, _ := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), "output.log"))
		return run != "" && strings.Contains(string(b), "waiting")
	})
	li, err := journal.ReadLock(stateDir)
	if err != nil || li.Run != run {
		t.Fatalf("lock %+v %v", li, err)
	}
	t.Cleanup(func() { syscall.Kill(li.PID, syscall.SIGKILL) })
	argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", li.PID))
	if err != nil || !bytes.Contains(argv, []byte("-vars-stdin")) {
		t.Fatalf("background argv %q %v", argv, err)
	}
	if bytes.Contains(argv, []byte("C4NARY")) {
		t.Fatalf("the secret is in the background process's argv: %q", argv)
	}
	if code, _, errs := upgrader("approve", dir, run, "gate.go"); code != 0 {
		t.Fatal(errs)
	}
	waitFor(t, "the background run to finish", 30*time.Second, func() bool {
		rs, err := executor.Replay(stateDir, run)
		return err == nil && rs.Outcome != ""
	})
	sum := sha256.Sum256([]byte(canary))
	if got := hostCat(t, web, "/opt/token.sha"); got != hex.EncodeToString(sum[:]) {
		b, _ := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), "output.log"))
		t.Fatalf("the host got %q, not the secret's sha256; output.log:\n%s", got, b)
	}
	assertNoCanary(t, "C4NARY", stateDir, planFile)
}

// assertNoCanary fails when any file under the paths (state directory,
// plan files, reports) holds the canary.
func assertNoCanary(t *testing.T, canary string, paths ...string) {
	t.Helper()
	for _, root := range paths {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s holds the secret", p)
			}
			return nil
		})
	}
}

// waitForGate waits until the newest run of stateDir has started the gate
// node (gate.NAME) and returns the run id.
func waitForGate(t *testing.T, stateDir, node string, timeout time.Duration) string {
	t.Helper()
	var run string
	waitFor(t, "the run", timeout, func() bool { run, _ = journal.Latest(stateDir); return run != "" })
	waitFor(t, "the gate", timeout, func() bool {
		b, _ := os.ReadFile(journal.Path(stateDir, run))
		return strings.Contains(string(b), `"node":"`+node+`"`)
	})
	return run
}
