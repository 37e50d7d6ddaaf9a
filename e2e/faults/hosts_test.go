package faults

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostKey_changedBetweenPlanAndApply: a plan saved, then the host's
// key changes (a new sshd, or a machine in the middle): applying the saved
// plan is refused before anything changes, naming the host and the
// known_hosts line.
func TestHostKey_changedBetweenPlanAndApply(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	w.exec("web", "rm -rf /opt/hk && mkdir -p /opt/hk && echo v1 > /opt/hk/app.conf && chown -R deploy: /opt/hk")
	w.write("v2.conf", "v2\n")
	w.write("main.hcl", `
step "deploy" {
  host            = host.web
  backup_required = false
  upload {
    source      = "v2.conf"
    destination = "/opt/hk/app.conf"
  }
}
`)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if r := w.upgrader("plan", "-no-color", "-out", planFile); r.code != 0 {
		t.Fatalf("plan: %s", r)
	}
	if err := w.bed.Host("web").RegenerateHostKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := w.upgrader("apply", "-no-color", planFile)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "HOST KEY CHANGED") || !strings.Contains(r.stdout+r.stderr, `"web"`) {
		t.Fatalf("apply of a saved plan after the host key changed: %s", r)
	}
	if got := strings.TrimSpace(w.exec("web", "cat /opt/hk/app.conf")); got != "v1" {
		t.Errorf("the host was changed: %q", got)
	}
}

// TestBackup_flippedByteRefused: one flipped byte in a real backup's
// archive; `backups verify` fails (exit 1, sha256 mismatch) and `backups
// restore` refuses before it touches the host.
func TestBackup_flippedByteRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	w.exec("web", "rm -rf /opt/fb && mkdir -p /opt/fb && head -c 200000 /dev/urandom > /opt/fb/blob && echo v1 > /opt/fb/app.conf && chown -R deploy: /opt/fb")
	w.write("main.hcl", `
backup "fb" {
  host  = host.web
  paths = ["/opt/fb"]
}
`)
	if r := w.upgrader("apply", "-auto-approve", "-no-color"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	archives, _ := filepath.Glob(filepath.Join(w.stateDir(), "backups", "*", "fb", "archive.tar.zst"))
	if len(archives) != 1 {
		t.Fatalf("archives: %v", archives)
	}
	run := filepath.Base(filepath.Dir(filepath.Dir(archives[0])))
	if r := w.upgrader("backups", "verify"); r.code != 0 {
		t.Fatalf("verify of an intact backup: %s", r)
	}
	flipByte(t, archives[0])
	if r := w.upgrader("backups", "verify"); r.code != 1 || !strings.Contains(r.stdout, "sha256 mismatch") {
		t.Errorf("verify of a flipped byte: %s", r)
	}
	w.exec("web", "echo v2 > /opt/fb/app.conf && rm /opt/fb/blob")
	if r := w.upgrader("backups", "restore", "-auto-approve", run, "fb"); r.code == 0 || !strings.Contains(r.stderr, "nothing was restored") {
		t.Errorf("restore of a flipped byte: %s", r)
	}
	if got := w.exec("web", "cat /opt/fb/app.conf; ls /opt/fb"); got != "v2\napp.conf\n" {
		t.Errorf("a refused restore changed the host: %q", got)
	}
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, 1)
	f.ReadAt(b, fi.Size()/2)
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestCut_midUpload: sshd and its sessions killed while a 64 MB upload
// streams: the destination keeps its old content (never a partial file),
// the run fails, and once sshd is back no temporary file of the upload is
// left beside the destination after the rollback.
func TestCut_midUpload(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	h := w.bed.Host("web")
	w.exec("web", "rm -rf /opt/cu && mkdir -p /opt/cu && echo old > /opt/cu/big.bin && chown -R deploy: /opt/cu")
	big := make([]byte, 64<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(w.dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	w.write("main.hcl", `
step "deploy" {
  host            = host.web
  backup_required = false
  upload {
    source      = "big.bin"
    destination = "/opt/cu/big.bin"
  }
}
`)
	done := make(chan result, 1)
	go func() { done <- w.upgrader("apply", "-auto-approve", "-no-color") }()
	// Cut once the upload has written a few MB somewhere under /opt/cu.
	deadline := time.Now().Add(60 * time.Second)
	for {
		used := strings.TrimSpace(w.exec("web", "du -sk /opt/cu | cut -f1"))
		if len(used) >= 4 { // >= 1000 KiB
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { h.StartSSH(context.Background()) })
	if err := h.StopSSH(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := strings.TrimSpace(w.exec("web", "cat /opt/cu/big.bin")); got != "old" {
		t.Errorf("destination while cut: %.20q", got)
	}
	if err := h.StartSSH(context.Background()); err != nil { // back: the rollback can reach it
		t.Fatal(err)
	}
	r := <-done
	if r.code == 0 {
		t.Fatalf("a cut upload succeeded: %s", r)
	}
	if got := strings.TrimSpace(w.exec("web", "cat /opt/cu/big.bin")); got != "old" {
		t.Errorf("destination after the cut: %.20q", got)
	}
	if ls := w.exec("web", "ls -A /opt/cu"); ls != "big.bin\n" {
		t.Errorf("left beside the destination after a cut upload and its rollback: %q\n%s", ls, r)
	}
}

// TestCut_midBackup: sshd killed while a backup streams: the run fails
// before any step, and `backups list -json` shows the backup incomplete (no
// manifest, no archive): nothing that looks complete.
func TestCut_midBackup(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	h := w.bed.Host("web")
	w.exec("web", "rm -rf /opt/cb && mkdir -p /opt/cb && head -c 64000000 /dev/urandom > /opt/cb/blob && chown -R deploy: /opt/cb")
	w.write("main.hcl", `
backup "cb" {
  host  = host.web
  paths = ["/opt/cb"]
}

step "after" {
  host       = host.web
  depends_on = [backup.cb]
  run {
    command = "touch /opt/cb/after-ran"
  }
}
`)
	done := make(chan result, 1)
	go func() { done <- w.upgrader("apply", "-auto-approve", "-no-color") }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tmps, _ := filepath.Glob(filepath.Join(w.stateDir(), "backups", "*", "cb", "archive.tar.zst.tmp"))
		if len(tmps) == 1 {
			if fi, err := os.Stat(tmps[0]); err == nil && fi.Size() > 2<<20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup never streamed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { h.StartSSH(context.Background()) })
	if err := h.StopSSH(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "backup.cb") {
		t.Fatalf("a cut backup: %s", r)
	}
	if err := h.StartSSH(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.exec("web", "ls /opt/cb") != "blob\n" {
		t.Error("the step after the cut backup ran")
	}
	l := w.upgrader("backups", "list", "-json")
	evs := jsonLines(t, l.stdout)
	if len(evs) != 1 || evs[0]["complete"] != false {
		t.Errorf("backups list after a cut backup: %s", l)
	}
	files, _ := filepath.Glob(filepath.Join(w.stateDir(), "backups", "*", "cb", "*"))
	if len(files) != 0 {
		t.Errorf("a cut backup left %v", files)
	}
}
