package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// A template on a real host as root: the plan diffs against the root-only
// remote file with the secret masked (old and new), apply writes it with
// mode and group, re-plan is =, undo restores the exact previous file.
func TestTemplate_realHost(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Exec(t.Context(), `printf 'version = 1.0.0\npassword = oldpw\n' > /etc/app/app.conf && chmod 0600 /etc/app/app.conf`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte("version = ${version}\npassword = ${password}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &modtest.Runner{T: t, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: dir, Ctx: modtest.EvalContext()}
	snap := func() string { return modtest.Snapshot(t, h.Exec, []string{"/etc/app"}) }
	for _, dest := range []string{"/etc/app/app.conf", "/etc/app/conf.d/new.conf"} {
		t.Run(dest, func(t *testing.T) {
			r.T = t
			before := snap()
			m := &Template{}
			cfg := r.Decode(m, `template {
  source      = "app.conf.tmpl"
  destination = "`+dest+`"
  vars        = { version = var.version, password = var.secret }
  mode        = "0640"
  group       = "deploy"
  sudo        = true
}`)
			p := r.Plan(m, cfg)
			if strings.Contains(p.Detail, "hunter2") || strings.Contains(p.Detail, "oldpw") {
				t.Fatalf("plan shows a secret:\n%s", p.Detail)
			}
			if !strings.Contains(p.Detail, "+version = 2.4.0") || !strings.Contains(p.Detail, "password = (sensitive)") {
				t.Fatalf("plan diff:\n%s", p.Detail)
			}
			_, state := r.MustApply(m, cfg)
			out, err := h.Exec(t.Context(), "stat -c '%a %U:%G' "+dest+"; cat "+dest)
			if err != nil || out != "640 root:deploy\nversion = 2.4.0\npassword = hunter2\n" {
				t.Fatalf("after apply: %q %v", out, err)
			}
			if p := r.Plan(m, cfg); p.Change != modules.NoOp {
				t.Fatalf("re-plan = %s %s\n%s", p.Change, p.Summary, p.Detail)
			}
			r.Undo(m, cfg, state)
			if after := snap(); after != before {
				t.Fatalf("undo:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// The old content of lines that now hold a sensitive value stays hidden on
// a real host, whatever the old lines looked like (another key name, a
// multi-line private key).
func TestTemplate_realHostOldSecretHidden(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	old := "version = 2.4.0\ndb_password = 0ld-C4NARY\n-----BEGIN OLD KEY-----\nMIIEvQ-C4NARY-keyline\n-----END OLD KEY-----\n"
	if _, err := h.Exec(t.Context(), "printf '%s' '"+old+"' > /etc/app/app.conf && chmod 0600 /etc/app/app.conf"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte("version = ${version}\npassword: ${password}\n${password}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &modtest.Runner{T: t, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: dir, Ctx: modtest.EvalContext()}
	m := &Template{}
	p := r.Plan(m, r.Decode(m, `template {
  source      = "app.conf.tmpl"
  destination = "/etc/app/app.conf"
  vars        = { version = var.version, password = var.secret }
  sudo        = true
}`))
	if p.Change != modules.Update || !strings.Contains(p.Detail, "-(sensitive)") {
		t.Fatalf("plan %s:\n%s", p.Change, p.Detail)
	}
	for _, s := range []string{"C4NARY", "OLD KEY", "hunter2"} {
		if strings.Contains(p.Detail+p.Summary, s) {
			t.Errorf("the plan shows %q:\n%s", s, p.Detail)
		}
	}
}
