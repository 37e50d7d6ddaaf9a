package faults

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDiskFull_controllerDuringBackup: the state directory's file system
// fills up while a backup streams (after the up-front space check passed):
// the run fails before any step, naming the full disk, and leaves no
// archive, temporary file or manifest. Full before it starts: the space
// check refuses it at plan (modules/backup TestBackup_noSpace).
func TestDiskFull_controllerDuringBackup(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	state := w.stateDir()
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", state).Run() })
	w.exec("web", "rm -rf /opt/df && mkdir -p /opt/df && head -c 16000000 /dev/urandom > /opt/df/blob && chown -R deploy: /opt/df")
	w.write("main.hcl", `
backup "df" {
  host  = host.web
  paths = ["/opt/df"]
}

step "after" {
  host       = host.web
  depends_on = [backup.df]
  run {
    command = "touch /opt/df/after-ran"
  }
}
`)
	done := make(chan result, 1)
	go func() { done <- w.upgrader("apply", "-auto-approve", "-no-color") }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tmps, _ := filepath.Glob(filepath.Join(state, "backups", "*", "df", "archive.tar.zst.tmp"))
		if len(tmps) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup never started")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Fill what is left of the file system.
	exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(state, "filler"), "bs=1M").Run()
	r := <-done
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "no space left on device") {
		t.Fatalf("a backup onto a full disk: %s", r)
	}
	if w.exec("web", "ls /opt/df") != "blob\n" {
		t.Error("the step after the failed backup ran")
	}
	left, _ := filepath.Glob(filepath.Join(state, "backups", "*", "df", "*"))
	if len(left) != 0 {
		t.Errorf("a backup that hit a full disk left %v", left)
	}
}

// TestDiskFull_targetDuringBackup: the backed-up paths sit on a full file
// system of the host: a backup writes nothing there, so it succeeds and
// verifies. (Writes onto a full host disk: executor/ssh
// TestFaults_files/diskFull, the destination keeps its old content.)
func TestDiskFull_targetDuringBackup(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	h := w.bed.Host("web")
	if err := h.MountTmpfs(context.Background(), "/opt/tf", "1m"); err != nil {
		t.Fatal(err)
	}
	w.exec("web", "echo conf > /opt/tf/app.conf; head -c 2000000 /dev/urandom > /opt/tf/fill 2>/dev/null; df -k /opt/tf | tail -1")
	if avail := strings.Fields(w.exec("web", "df -k /opt/tf | tail -1"))[3]; avail != "0" {
		t.Fatalf("not full: %s KiB available", avail)
	}
	w.write("main.hcl", `
backup "tf" {
  host  = host.web
  paths = ["/opt/tf"]
}
`)
	if r := w.upgrader("apply", "-auto-approve", "-no-color"); r.code != 0 {
		t.Fatalf("backup of a full host disk: %s", r)
	}
	if r := w.upgrader("backups", "verify"); r.code != 0 {
		t.Fatalf("verify: %s", r)
	}
}
