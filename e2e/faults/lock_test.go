package faults

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLock_racingApplies starts four `upgrader apply` processes on one
// configuration at the same instant: exactly one runs (the host's counter
// is 1), the others exit 4 naming the holder. Racing goroutines and
// processes taking over a stale lock: executor/journal
// TestTakeOver_racingGoroutinesOneHolder, TestTakeOver_racingProcessesOneHolder.
func TestLock_racingApplies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	w.exec("web", "rm -rf /opt/race && mkdir -p /opt/race && chown deploy: /opt/race")
	w.write("main.hcl", `
step "count" {
  host            = host.web
  backup_required = false
  run {
    command = "echo ran >> /opt/race/count && while [ ! -f /opt/race/go ]; do sleep 0.05; done"
  }
}
`)
	const n = 4
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := exec.Command(w.bin, "apply", "-auto-approve", "-no-color")
			c.Dir = w.dir
			var o, e strings.Builder
			c.Stdout, c.Stderr = &o, &e
			err := c.Run()
			results[i] = result{stdout: o.String(), stderr: e.String()}
			if ee, ok := err.(*exec.ExitError); ok {
				results[i].code = ee.ExitCode()
			}
		}()
	}
	close(start)
	// The holder waits on the host for /opt/race/go: release it once the
	// others had time to give up (they do not wait for a lock).
	deadline := time.Now().Add(60 * time.Second)
	for hostCatW(w, "/opt/race/count") == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	w.exec("web", "touch /opt/race/go")
	wg.Wait()
	var ok, locked int
	for _, r := range results {
		switch {
		case r.code == 0:
			ok++
		case r.code == 4 && strings.Contains(r.stderr, "pid "):
			locked++
		default:
			t.Errorf("an apply ended with %s", r)
		}
	}
	if ok != 1 || locked != n-1 {
		t.Errorf("%d applies ran, %d were refused the lock; want 1 and %d", ok, locked, n-1)
	}
	if got := strings.Count(hostCatW(w, "/opt/race/count"), "ran"); got != 1 {
		t.Errorf("the step ran %d times", got)
	}
}
