// Package faults is the fault suite of docs/RELIABILITY.md: each fault is
// caused for real (sshd killed, links cut, disks filled, the controller
// SIGKILLed at an fsync, host keys changed, archives flipped) against test
// hosts (internal/testbed) while the real upgrader binary runs, and each
// test asserts what RELIABILITY.md promises. Faults already proven by a
// package's own tests are referenced there, not repeated here.
//
// It needs root and sshd (testbed.Require); tests run in parallel, each on
// hosts of its own.
package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// world is a configuration directory on the controller for a test's hosts.
type world struct {
	t   *testing.T
	bed *testbed.Testbed
	dir string
	bin string
}

func newWorld(t *testing.T, hosts ...string) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("fault suite: skipped with -short")
	}
	bed := testbed.New(t, hosts...)
	w := &world{t: t, bed: bed, dir: t.TempDir(), bin: testbin.Upgrader(t)}
	if err := bed.WriteHostsHCL(filepath.Join(w.dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	return w
}

// write puts a file into the configuration directory.
func (w *world) write(name, content string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// exec runs a shell command as root on a host and fails the test on error.
func (w *world) exec(host, cmd string) string {
	w.t.Helper()
	out, err := w.bed.Host(host).Exec(context.Background(), cmd)
	if err != nil {
		w.t.Fatalf("%s: %s: %v", host, cmd, err)
	}
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "\n--- stderr\n" + r.stderr
}

// run runs the upgrader binary (prefix, e.g. strace, before it) in the
// configuration directory and waits for it, at most two minutes.
func (w *world) run(prefix []string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string(nil), prefix...), w.bin), args...)
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = w.dir
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("%v: %v", argv, err)
	}
	return r
}

func (w *world) upgrader(args ...string) result { return w.run(nil, args...) }

func (w *world) stateDir() string { return filepath.Join(w.dir, ".upgrader") }

// events reads the newest run's journal.
func (w *world) events() []journal.Event {
	w.t.Helper()
	run, err := journal.Latest(w.stateDir())
	if err != nil {
		w.t.Fatal(err)
	}
	evs, _, err := journal.Read(journal.Path(w.stateDir(), run))
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

// jsonLines decodes -json output, one event a line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("-json line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func t0() context.Context { return context.Background() }
