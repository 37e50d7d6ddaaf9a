package release

import (
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// Issue 13.2 for release with sudo = true in a directory the deploy user may
// write: links planted at the names root used to use (the current-link
// temporaries, the /tmp stage) point at root's files; apply and undo never
// write through them, and the release, current and undo are exact.
func TestRelease_sudoNeverWritesThroughPlantedLinks(t *testing.T) {
	_, tg, exec := webHost(t)
	exec(`mkdir -p /opt/app/releases /opt/victimdir && printf 'root secret\n' > /opt/victim && chmod 0600 /opt/victim &&
chown root:root /opt/victim /opt/victimdir && chmod 0700 /opt/victimdir && chown deploy:deploy /opt/app /opt/app/releases &&
su deploy -s /bin/sh -c 'ln -s /opt/victimdir /opt/app/.current.upgrader-r1 && ln -s /opt/victimdir /opt/app/.current.upgrader-undo &&
  ln -s /opt/victim /opt/app/releases/.1.0.0.tar.gz.upgrader-r1 && ln -s /opt/victim /tmp/.upgrader-r1-release-1.0.0.tar.gz'`)
	victims := func() string {
		return exec("stat -c '%n %a %U' /opt/victim /opt/victimdir; cat /opt/victim; ls -A /opt/victimdir")
	}
	before := victims()
	r := &modtest.Runner{T: t, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: t.TempDir()}
	artifact(t, r.Dir, "1.0.0")
	m := &Release{}
	cfg := r.Decode(m, `release {
  artifact = "dist/app-1.0.0.tar.gz"
  dir      = "/opt/app"
  version  = "1.0.0"
  sudo     = true
}`)
	_, st := r.MustApply(m, cfg)
	if got := exec("readlink /opt/app/current; stat -c %U /opt/app/releases/1.0.0/bin/app"); got != "/opt/app/releases/1.0.0\nroot\n" {
		t.Fatalf("after apply: %q", got)
	}
	if got := victims(); got != before {
		t.Fatalf("root wrote through a planted link on apply:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	r.Undo(m, cfg, st)
	if got := exec("ls -A /opt/app/releases; test -e /opt/app/current || echo no current"); got != ".1.0.0.tar.gz.upgrader-r1\nno current\n" {
		t.Fatalf("after undo: %q", got)
	}
	if got := victims(); got != before {
		t.Fatalf("root wrote through a planted link on undo:\nbefore:\n%s\nafter:\n%s", before, got)
	}
}
