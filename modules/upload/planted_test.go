package upload

import (
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
)

// Issue 13.2: the deploy user, who may write /etc/app, plants symlinks at
// every name a sudo upload used to write through as root (DEST.upgrader-new-RUN,
// DEST.upgrader-undo, DEST.upgrader-prev-RUN and its new RUN.* form, the /tmp
// stage) pointing at root's files. Apply, re-apply and undo must never write
// through them: root's files keep their bytes, mode and owner, and the
// destination gets exactly the new and then the old content.
func TestUpload_sudoNeverWritesThroughPlantedLinks(t *testing.T) {
	r, h := hostRunner(t)
	exec(t, h, `printf 'root secret\n' > /opt/victim && chmod 0600 /opt/victim && chown root:root /opt/victim &&
printf 'root prev\n' > /opt/victim-prev && chmod 0644 /opt/victim-prev && chown root:root /opt/victim-prev &&
printf 'old\n' > /etc/app/app.conf && chown deploy:deploy /etc/app/app.conf && chmod 0640 /etc/app/app.conf &&
su deploy -s /bin/sh -c 'cd /etc/app && ln -s /opt/victim app.conf.upgrader-new-run1 && ln -s /opt/victim app.conf.upgrader-undo &&
  ln -s /opt/victim-prev app.conf.upgrader-prev-run1 && ln -s /opt/victim-prev app.conf.upgrader-prev-run1.aaaa &&
  for f in $(printf "/etc/app/app.conf" | sha256sum | cut -c1-64); do ln -s /opt/victim /tmp/.upgrader-run1-$f; done'`)
	victims := func() string {
		return exec(t, h, "for f in /opt/victim /opt/victim-prev; do stat -c '%n %a %U' $f; cat $f; done")
	}
	before := victims()
	writeLocal(t, r.Dir, "app.conf", "new\n")
	u := &Upload{}
	cfg := r.Decode(u, `upload {
  source = "app.conf"
  destination = "/etc/app/app.conf"
  mode = "0600"
  sudo = true
}`)
	_, state := r.MustApply(u, cfg)
	if got := exec(t, h, "stat -c '%a %U' /etc/app/app.conf; cat /etc/app/app.conf"); got != "600 root\nnew\n" {
		t.Fatalf("after apply: %q", got)
	}
	if got := victims(); got != before {
		t.Fatalf("root wrote through a planted link on apply:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	r.Undo(u, cfg, state)
	if got := exec(t, h, "stat -c '%a %U' /etc/app/app.conf; cat /etc/app/app.conf"); got != "640 deploy\nold\n" {
		t.Fatalf("after undo: %q", got)
	}
	if got := victims(); got != before {
		t.Fatalf("root wrote through a planted link on undo:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	// The planted links are still links (nothing replaced them with root files).
	if got := exec(t, h, "find /etc/app /tmp -name '*upgrader*' ! -type l"); strings.TrimSpace(got) != "" {
		t.Fatalf("left behind: %s", got)
	}
}

// Undo takes the kept copy back only with the content recorded for it: a
// link the deploy user swapped in for the copy (pointing at a root file)
// makes undo fail instead of copying root's file over the destination.
func TestUpload_undoRefusesSwappedCopy(t *testing.T) {
	r, h := hostRunner(t)
	exec(t, h, `printf 'root secret\n' > /opt/victim && chmod 0600 /opt/victim &&
printf 'old\n' > /etc/app/app.conf && chown deploy:deploy /etc/app/app.conf`)
	writeLocal(t, r.Dir, "app.conf", "new\n")
	u := &Upload{}
	cfg := r.Decode(u, `upload {
  source = "app.conf"
  destination = "/etc/app/app.conf"
  sudo = true
}`)
	_, state := r.MustApply(u, cfg)
	exec(t, h, `su deploy -s /bin/sh -c 'cd /etc/app && for f in app.conf.upgrader-prev-*; do rm -f "$f" && ln -s /opt/victim "$f"; done'`)
	err := u.Undo(t.Context(), &modules.Request{Config: cfg, Node: "step.test", Host: r.Host, Env: r.Env, Log: &r.Log}, state)
	if err == nil || !strings.Contains(err.Error(), "not the content recorded") {
		t.Fatalf("undo through a swapped copy: %v", err)
	}
	if got := exec(t, h, "cat /etc/app/app.conf; stat -c %a /opt/victim"); got != "new\n600\n" {
		t.Fatalf("after the refused undo: %q", got)
	}
}
