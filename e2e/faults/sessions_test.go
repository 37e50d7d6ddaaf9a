package faults

import (
	"context"
	"strings"
	"testing"
)

// TestMaxSessions_exhausted: the host's sshd allows 2 sessions per
// connection (MaxSessions 2) and the procedure runs three steps and a
// backup on it in parallel: the run still succeeds. (Many more commands
// than sessions on one connection: executor/ssh TestTarget_maxSessions.)
func TestMaxSessions_exhausted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	if err := w.bed.Host("web").RestartSSH(context.Background(), "MaxSessions 2"); err != nil {
		t.Fatal(err)
	}
	w.exec("web", "rm -rf /opt/ms && mkdir -p /opt/ms/data && echo x > /opt/ms/data/f && chown -R deploy: /opt/ms")
	w.write("main.hcl", `
backup "ms" {
  host  = host.web
  paths = ["/opt/ms/data"]
}

step "s1" {
  host       = host.web
  depends_on = [backup.ms]
  run {
    command = "sleep 0.5; echo 1 > /opt/ms/s1"
  }
}

step "s2" {
  host       = host.web
  depends_on = [backup.ms]
  run {
    command = "sleep 0.5; echo 2 > /opt/ms/s2"
  }
}

step "s3" {
  host       = host.web
  depends_on = [backup.ms]
  run {
    command = "sleep 0.5; echo 3 > /opt/ms/s3"
  }
}
`)
	r := w.upgrader("apply", "-auto-approve", "-no-color", "-parallelism", "8")
	if r.code != 0 {
		t.Fatalf("apply with MaxSessions 2: %s", r)
	}
	if got := w.exec("web", "cat /opt/ms/s1 /opt/ms/s2 /opt/ms/s3"); strings.Fields(got)[2] != "3" {
		t.Errorf("steps: %q", got)
	}
}
