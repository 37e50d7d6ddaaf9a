package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// bedEnv starts one test host "web" and an Env whose host web is it.
func bedEnv(t *testing.T, run string) (*testbed.Testbed, *modtest.Env) {
	bed := testbed.New(t, "web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	return bed, &modtest.Env{ID: run, Dir: t.TempDir(), Targets: map[string]modules.Target{"web": tg}}
}

func hostExec(h *testbed.Host) execFunc { return h.Exec }

const bedRoot = "/opt/bktree"

func sudoBackupSrc(root string) string {
	return fmt.Sprintf(`backup {
  host    = host.web
  sudo    = true
  paths   = [%q, %q]
  exclude = ["*.tmp", %q]
}`, root+"/app", root+"/etc", root+"/app/cache")
}

// TestBackup_testbedRoundTrip backs up a tree on a real host over SSH as the
// deploy user with sudo, changes the tree, restores it and compares every
// entry: content, mode, owner, link target, mtime.
func TestBackup_testbedRoundTrip(t *testing.T) {
	bed, env := bedEnv(t, "r1")
	h := bed.Host("web")
	ctx := context.Background()
	if _, err := h.Exec(ctx, fmt.Sprintf(makeTree, shq(bedRoot))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(ctx, t, hostExec(h), bedRoot)
	b := &Backup{Version: "test"}
	var log bytes.Buffer
	// Without sudo the deploy user cannot read root's 0750 directory: plan says so.
	nosudo := decode(t, b, strings.Replace(sudoBackupSrc(bedRoot), "sudo    = true", "", 1))
	if _, err := b.Plan(ctx, &modules.Request{Config: nosudo, Node: "backup.web", Env: env, Log: &log}); err == nil ||
		!strings.Contains(err.Error(), "Permission denied") || !strings.Contains(err.Error(), "sudo = true") {
		t.Errorf("plan without sudo: %v", err)
	}
	cfg := decode(t, b, sudoBackupSrc(bedRoot))
	req := &modules.Request{Config: cfg, Node: "backup.web", Index: -1, Env: env, Log: &log}
	p, err := b.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Change != modules.Read || !strings.Contains(p.Summary, "host web: "+bedRoot+"/app") {
		t.Errorf("plan: %+v", p)
	}
	out, err := b.Apply(ctx, req)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, log.String())
	}
	if out.Outputs["id"].AsString() != "r1/web" {
		t.Errorf("outputs %v", out.Outputs)
	}
	if _, err := h.Exec(ctx, fmt.Sprintf(changeTree, shq(bedRoot))); err != nil {
		t.Fatal(err)
	}
	checkSnapshotSane(t, before, snapshot(ctx, t, hostExec(h), bedRoot))

	r := &Restore{}
	rreq := &modules.Request{Config: decode(t, r, `restore { backup = backup.web }`), Node: "step.x", Host: "web", Env: env, Log: &log}
	rp, err := r.Plan(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rp.Detail, "+ "+bedRoot+"/etc (missing now, restored)") || !strings.Contains(rp.Detail, "~ "+bedRoot+"/app (replaced") {
		t.Errorf("restore plan detail:\n%s", rp.Detail)
	}
	if _, err := r.Apply(ctx, rreq); err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	after := snapshot(ctx, t, hostExec(h), bedRoot)
	compareTrees(t, before, after)
	if !strings.Contains(after["./app/log.tmp"], "sha256=") || after["./app/cache/page2"] == "" {
		t.Errorf("excluded files were not kept: %q %q", after["./app/log.tmp"], after["./app/cache/page2"])
	}
}

// TestRestore_testbedCorrupt: a flipped byte is found by verify and by
// restore, and restore writes nothing to the host.
func TestRestore_testbedCorrupt(t *testing.T) {
	bed, env := bedEnv(t, "r1")
	h := bed.Host("web")
	ctx := context.Background()
	if _, err := h.Exec(ctx, fmt.Sprintf(makeTree, shq(bedRoot))); err != nil {
		t.Fatal(err)
	}
	b := &Backup{}
	if _, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, sudoBackupSrc(bedRoot)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(Dir(env.Dir, "r1", "web"), hostArchive))
	if _, _, err := VerifyDir(ctx, Dir(env.Dir, "r1", "web")); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("verify: %v", err)
	}
	if _, err := h.Exec(ctx, fmt.Sprintf(changeTree, shq(bedRoot))); err != nil {
		t.Fatal(err)
	}
	changed := snapshot(ctx, t, hostExec(h), bedRoot)
	r := &Restore{}
	_, err := r.Apply(ctx, &modules.Request{Config: decode(t, r, `restore { backup = backup.web }`), Host: "web", Env: env, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("restore: %v", err)
	}
	compareTrees(t, changed, snapshot(ctx, t, hostExec(h), bedRoot))
}

// cutEnv calls cut (once, in the background) when a backup has streamed at bytes.
type cutEnv struct {
	*modtest.Env
	at      int64
	cut     func()
	once    sync.Once
	cutDone sync.WaitGroup // the test waits for the cut before it ends
}

func (e *cutEnv) Progress(done, total int64) {
	e.Env.Progress(done, total)
	if done >= e.at {
		e.once.Do(func() {
			e.cutDone.Add(1)
			go func() { defer e.cutDone.Done(); e.cut() }()
		})
	}
}

// TestBackup_testbedCut cuts the connection in the middle of a backup (sshd
// killed; the link taken down): no manifest, no archive, no temp file.
func TestBackup_testbedCut(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	ctx := context.Background()
	if _, err := h.Exec(ctx, "mkdir -p /opt/big/etc && head -c 64000000 /dev/urandom > /opt/big/blob"); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"sshd killed", "link down"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			// Short keepalives: a dead link is noticed in about 2s.
			pool := ssh.NewPool(ssh.Options{KeepaliveInterval: 500 * time.Millisecond, KeepaliveMax: 4})
			t.Cleanup(func() { pool.Close() })
			tg, err := pool.Target(ctx, "web", h.SSHConfig())
			if err != nil {
				t.Fatal(err)
			}
			env := &cutEnv{Env: &modtest.Env{ID: "r1", Dir: t.TempDir(), Targets: map[string]modules.Target{"web": tg}}, at: 4 << 20}
			env.cut = func() {
				var err error
				// The repair is registered before the cut: the backup fails as
				// soon as the cut happens, and the subtest may end right then.
				if how == "sshd killed" {
					t.Cleanup(func() {
						if err := h.StartSSH(context.Background()); err != nil {
							t.Error(err)
						}
					})
					err = h.StopSSH(ctx)
				} else {
					t.Cleanup(func() {
						if err := h.RestoreLink(context.Background()); err != nil {
							t.Error(err)
						}
					})
					err = h.CutLink(ctx)
				}
				if err != nil {
					t.Error(err)
				}
			}
			b := &Backup{}
			cfg := decode(t, b, `backup {
  host  = host.web
  paths = ["/opt/big"]
}`)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err = b.Apply(cctx, &modules.Request{Config: cfg, Node: "backup.big", Env: env, Log: &bytes.Buffer{}})
			env.cutDone.Wait()
			if err == nil || !strings.Contains(err.Error(), `"web"`) {
				t.Fatalf("a cut backup: %v", err)
			}
			t.Logf("error: %v", err)
			left, _ := os.ReadDir(Dir(env.Dir, "r1", "big"))
			if len(left) != 0 {
				t.Errorf("a cut backup left %v", left)
			}
			if env.Done < env.at {
				t.Errorf("cut before the stream began (%d bytes)", env.Done)
			}
		})
	}
}
