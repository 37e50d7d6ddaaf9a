package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// artifact writes dist/app-VERSION.tar.gz: bin/app prints the version,
// config/app.conf is seeded into shared/ the first time.
func artifact(t *testing.T, dir, version string) {
	t.Helper()
	app := "#!/bin/sh\necho app " + version + "\n"
	if version == "5.0.0" {
		app = "#!/bin/sh\necho 'app 5.0.0: cannot start' >&2\nexit 3\n" // a broken build
	}
	data := modtest.TarGzFiles(t,
		modtest.TarFile{Name: "bin/", Mode: 0o755},
		modtest.TarFile{Name: "bin/app", Body: app, Mode: 0o755},
		modtest.TarFile{Name: "config/app.conf", Body: "# default config of " + version + "\n"},
		modtest.TarFile{Name: "log/.keep", Body: ""},
	)
	p := filepath.Join(dir, "dist", "app-"+version+".tar.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func block(version, activate string, keep int) string {
	return `release {
  artifact = "dist/app-` + version + `.tar.gz"
  dir      = "/opt/app"
  version  = "` + version + `"
  shared   = ["log", "config/app.conf"]
  activate = "` + activate + `"
  keep     = ` + itoa(keep) + `
}`
}

func itoa(n int) string { return string(rune('0' + n)) }

// webHost starts a test host "web" and returns it, a Target on it as the
// deploy user, and exec, which runs a command there as root (test set-up
// and assertions) and fails the test on an error.
func webHost(t *testing.T) (*testbed.Host, modules.Target, func(cmd string) string) {
	t.Helper()
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(cmd string) string {
		t.Helper()
		out, err := h.Exec(t.Context(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return h, tg, exec
}

// Releases on a real host: first release, upgrade with shared links and
// activate, = on re-plan, undo back to the exact previous tree with activate
// run again, pruning to keep (undone too), and failures that roll themselves back.
func TestRelease_realHost(t *testing.T) {
	h, tg, exec := webHost(t)
	exec("mkdir -p /opt/app && chown deploy:deploy /opt/app /var/log/app")
	env := &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}
	r := &modtest.Runner{T: t, Env: env, Host: "web", Dir: t.TempDir()}
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0"} {
		artifact(t, r.Dir, v)
	}
	m := &Release{}
	// Trash of earlier runs is upgrader's bookkeeping, removed by the next run by design.
	snap := func() string { return modtest.Snapshot(t, h.Exec, []string{"/opt/app"}, trashPrefix) }
	const activate = `bin/app >> /var/log/app/activations`
	lastActivation := func() string {
		lines := strings.Split(strings.TrimSpace(exec("cat /var/log/app/activations")), "\n")
		return lines[len(lines)-1]
	}
	apply := func(run, version, act string, keep int) ([]byte, *modules.Config) {
		t.Helper()
		env.ID = run
		cfg := r.Decode(m, block(version, act, keep))
		_, st := r.MustApply(m, cfg)
		return st, cfg
	}

	// First release: + (none) -> 1.0.0; then = on re-plan.
	cfg1 := r.Decode(m, block("1.0.0", activate, 5))
	if p := r.Plan(m, cfg1); p.Change != modules.Create || p.Summary != "current: (none) -> 1.0.0" {
		t.Fatalf("plan = %s %q", p.Change, p.Summary)
	}
	apply("r1", "1.0.0", activate, 5)
	if p := r.Plan(m, cfg1); p.Change != modules.NoOp {
		t.Fatalf("re-plan = %s %q, want =", p.Change, p.Summary)
	}
	if got := lastActivation(); got != "app 1.0.0" {
		t.Fatalf("activation = %q", got)
	}
	exec("echo 'local edit' >> /opt/app/shared/config/app.conf")
	before := snap()

	// Upgrade: plan names both versions; shared paths are links; activate ran in the new release.
	cfg2 := r.Decode(m, block("2.0.0", activate, 5))
	if p := r.Plan(m, cfg2); p.Change != modules.Update || p.Summary != "current: 1.0.0 -> 2.0.0" {
		t.Fatalf("plan = %s %q", p.Change, p.Summary)
	}
	st2, _ := apply("r2", "2.0.0", activate, 5)
	if got := exec("readlink /opt/app/current; readlink /opt/app/releases/2.0.0/config/app.conf; tail -1 /opt/app/current/config/app.conf"); got !=
		"/opt/app/releases/2.0.0\n/opt/app/shared/config/app.conf\nlocal edit\n" {
		t.Fatalf("after upgrade: %q", got)
	}
	if got := lastActivation(); got != "app 2.0.0" {
		t.Fatalf("activation = %q", got)
	}
	if p := r.Plan(m, cfg2); p.Change != modules.NoOp {
		t.Fatalf("re-plan = %s %q, want =", p.Change, p.Summary)
	}
	if out, _ := r.MustApply(m, cfg2); out.Changed {
		t.Fatalf("re-apply of the same version changed something: %s", out.Message)
	}
	r.Undo(m, cfg2, st2)
	if after := snap(); after != before {
		t.Fatalf("undo did not restore the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := lastActivation(); got != "app 1.0.0" {
		t.Fatalf("undo did not activate the previous release: %q", got)
	}

	// Pruning with keep = 2: never current or the previous one; undone exactly.
	apply("r3", "2.0.0", activate, 2)
	apply("r4", "3.0.0", activate, 2)
	if got := exec("ls /opt/app/releases"); got != "2.0.0\n3.0.0\n" {
		t.Fatalf("releases after keep=2: %q", got)
	}
	before = snap()
	st4, cfg4 := apply("r5", "4.0.0", activate, 2)
	if got := exec("ls /opt/app/releases"); got != "3.0.0\n4.0.0\n" {
		t.Fatalf("releases after 4.0.0: %q", got)
	}
	r.Undo(m, cfg4, st4)
	if after := snap(); after != before {
		t.Fatalf("undo after prune did not restore the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// activate fails (a broken build): the action puts current back itself,
	// activates the previous release again and says so.
	env.ID = "r6"
	cfg5 := r.Decode(m, block("5.0.0", activate, 2))
	_, _, err := r.Apply(m, cfg5)
	if err == nil || !strings.Contains(err.Error(), "rolled back to 3.0.0") || !strings.Contains(err.Error(), `host "web"`) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("the error does not carry the command's output: %v", err)
	}
	if after := snap(); after != before {
		t.Fatalf("a failed activate changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := lastActivation(); got != "app 3.0.0" {
		t.Fatalf("after the failed activate, last activation = %q, want app 3.0.0", got)
	}

	// A truncated artifact (valid gzip start) fails in tar: no partial release appears.
	data, err := os.ReadFile(filepath.Join(r.Dir, "dist", "app-5.0.0.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "dist", "app-5.0.0.tar.gz"), data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	env.ID = "r7"
	if _, _, err := r.Apply(m, r.Decode(m, block("5.0.0", activate, 2))); err == nil {
		t.Fatal("a truncated artifact was unpacked")
	}
	if after := snap(); after != before {
		t.Fatalf("a failed unpack changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// With sudo = true the release lives in a root-owned directory the deploy
// user cannot write: staged upload, root-owned release, exact undo.
func TestRelease_sudo(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	r := &modtest.Runner{T: t, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: t.TempDir()}
	artifact(t, r.Dir, "1.0.0")
	before := modtest.Snapshot(t, h.Exec, []string{"/opt"})
	m := &Release{}
	cfg := r.Decode(m, `release {
  artifact = "dist/app-1.0.0.tar.gz"
  dir      = "/opt/rootapp"
  version  = "1.0.0"
  shared   = ["log"]
  activate = "bin/app > /opt/rootapp/shared/log/started"
  sudo     = true
}`)
	_, st := r.MustApply(m, cfg)
	out, err := h.Exec(t.Context(), "stat -c '%U' /opt/rootapp/releases/1.0.0/bin/app; readlink /opt/rootapp/current; cat /opt/rootapp/shared/log/started; ls -a /tmp")
	if err != nil || out != "root\n/opt/rootapp/releases/1.0.0\napp 1.0.0\n.\n..\n" {
		t.Fatalf("after apply (owner, current, activate output, no staged file left in /tmp): %q %v", out, err)
	}
	if p := r.Plan(m, cfg); p.Change != modules.NoOp {
		t.Fatalf("re-plan = %s %s", p.Change, p.Summary)
	}
	r.Undo(m, cfg, st)
	if after := modtest.Snapshot(t, h.Exec, []string{"/opt"}); after != before {
		t.Fatalf("undo:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// An activate command with a secret in it: the undo state (journaled as
// is) holds no trace of it, and Undo runs the command taken from the block,
// evaluated again, secret included. A state journaled by an older version
// (the command's text) still undoes, with the block's command.
func TestRelease_activateSecretNotRecorded(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Exec(t.Context(), "mkdir -p /opt/app && chown deploy:deploy /opt/app /var/log/app"); err != nil {
		t.Fatal(err)
	}
	env := &modtest.Env{ID: "s1", Targets: map[string]modules.Target{"web": tg}}
	r := &modtest.Runner{T: t, Env: env, Host: "web", Dir: t.TempDir(), Ctx: modtest.EvalContext()}
	artifact(t, r.Dir, "1.0.0")
	artifact(t, r.Dir, "2.0.0")
	m := &Release{}
	// var.secret is the sensitive "hunter2" of modtest's scope
	const activate = `bin/app \"$(printf %s ${var.secret} | base64)\" >> /var/log/app/activations`
	r.MustApply(m, r.Decode(m, block("1.0.0", activate, 5)))
	env.ID = "s2"
	cfg := r.Decode(m, block("2.0.0", activate, 5))
	_, st := r.MustApply(m, cfg)
	for _, form := range []string{"hunter2", "aHVudGVyMg", "activations"} {
		if strings.Contains(string(st), form) {
			t.Fatalf("the undo state holds %q: %s", form, st)
		}
	}
	r.Undo(m, cfg, st)
	out, err := h.Exec(t.Context(), "readlink /opt/app/current; tail -1 /var/log/app/activations")
	if err != nil || out != "/opt/app/releases/1.0.0\napp 1.0.0\n" {
		t.Fatalf("after undo: %q %v", out, err)
	}
	// an older journal's state: the command's text instead of true
	env.ID = "s3"
	_, st = r.MustApply(m, cfg)
	legacy := strings.Replace(string(st), `"activate":true`, `"activate":"echo stale text >> /var/log/app/activations"`, 1)
	if legacy == string(st) {
		t.Fatalf("no activate flag in %s", st)
	}
	r.Undo(m, cfg, []byte(legacy))
	if out, err := h.Exec(t.Context(), "tail -1 /var/log/app/activations"); err != nil || out != "app 1.0.0\n" {
		t.Fatalf("legacy undo: %q %v", out, err)
	}
}
