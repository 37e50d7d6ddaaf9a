package backup

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
)

// A release layout: /opt/app is a link to the current release; inside it a
// link to shared data outside the backup.
const releaseTree = `set -e
mkdir -p /opt/releases/v1/conf /opt/shared
printf 'v1\n' > /opt/releases/v1/VERSION
printf 'port=1\n' > /opt/releases/v1/conf/app.conf
ln -s /opt/shared /opt/releases/v1/shared
ln -s releases/v1 /opt/app
chown -R deploy: /opt/releases /opt/app /opt/shared
`

// A release switch, done as the release module would, plus changes in the
// old release that a restore must undo.
const switchRelease = `set -e
mkdir -p /opt/releases/v2
printf 'v2\n' > /opt/releases/v2/VERSION
ln -sfn releases/v2 /opt/app
printf 'port=2\n' > /opt/releases/v1/conf/app.conf
rm /opt/releases/v1/VERSION
printf 'stray' > /opt/releases/v1/stray
`

// TestBackup_testbedSymlinkPath: a backed-up path that is a symbolic link
// is backed up as the link and what it points to; after a release switch
// the restore puts back both (the link points to v1 again and v1's content
// is as it was), v2 is left alone, and the plan says what it follows and
// which inner link it does not.
func TestBackup_testbedSymlinkPath(t *testing.T) {
	bed, env := bedEnv(t, "r1")
	h := bed.Host("web")
	ctx := context.Background()
	if _, err := h.Exec(ctx, releaseTree); err != nil {
		t.Fatal(err)
	}
	before := snapshot(ctx, t, hostExec(h), "/opt/releases/v1")
	b := &Backup{}
	cfg := decode(t, b, `backup {
  host  = host.web
  paths = ["/opt/app"]
}`)
	var log bytes.Buffer
	req := &modules.Request{Config: cfg, Node: "backup.web", Index: -1, Env: env, Log: &log}
	p, err := b.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Detail, "/opt/app -> /opt/releases/v1 (the link and what it points to)") {
		t.Errorf("plan detail: %q", p.Detail)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "/opt/releases/v1/shared is a link to the directory /opt/shared, outside the backup") {
		t.Errorf("plan warnings: %q", p.Warnings)
	}
	if _, err := b.Apply(ctx, req); err != nil {
		t.Fatalf("backup: %v\n%s", err, log.String())
	}
	m, err := ReadManifest(Dir(env.Dir, "r1", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Links) != 1 || m.Links[0] != (Link{Path: "/opt/app", Target: "/opt/releases/v1", Symlink: true}) {
		t.Errorf("manifest links: %+v", m.Links)
	}
	if _, err := h.Exec(ctx, switchRelease); err != nil {
		t.Fatal(err)
	}

	r := &Restore{}
	restore := func(src string) {
		t.Helper()
		if _, err := r.Apply(ctx, &modules.Request{Config: decode(t, r, src), Host: "web", Env: env, Log: &log}); err != nil {
			t.Fatalf("restore: %v\n%s", err, log.String())
		}
	}
	// Only the configuration, through the link: v1's conf (where it was
	// backed up), not v2's; the link stays on v2.
	restore(`restore {
  backup = backup.web
  paths  = ["/opt/app/conf"]
}`)
	if got := hostCat(t, h, "/opt/releases/v1/conf/app.conf"); got != "port=1" {
		t.Errorf("v1 conf after a subset restore: %q", got)
	}
	if got, _ := h.Exec(ctx, "readlink /opt/app"); got != "releases/v2\n" {
		t.Errorf("a subset restore moved the link: %q", got)
	}
	rp, err := r.Plan(ctx, &modules.Request{Config: decode(t, r, `restore { backup = backup.web }`), Host: "web", Env: env, Log: &log})
	if err != nil || rp.Detail != "~ /opt/app (the link, to /opt/releases/v1 again, and what it points to)" {
		t.Errorf("restore plan: %v %q", err, rp.Detail)
	}
	restore(`restore { backup = backup.web }`)
	if got, _ := h.Exec(ctx, "readlink /opt/app; cat /opt/app/VERSION /opt/releases/v2/VERSION"); got != "releases/v1\nv1\nv2\n" {
		t.Errorf("after restore: link, content, v2: %q", got)
	}
	compareTrees(t, before, snapshot(ctx, t, hostExec(h), "/opt/releases/v1"))

	// The link replaced by a real directory meanwhile: the restore makes it
	// the link again.
	if _, err := h.Exec(ctx, "rm /opt/app && mkdir /opt/app && echo x > /opt/app/local && chown -R deploy: /opt/app"); err != nil {
		t.Fatal(err)
	}
	restore(`restore { backup = backup.web }`)
	if got, _ := h.Exec(ctx, "readlink /opt/app; cat /opt/app/VERSION"); got != "releases/v1\nv1\n" {
		t.Errorf("restore over a directory: %q", got)
	}
}

// hostCat reads a file on a test host as root ("" when missing).
func hostCat(t *testing.T, h interface {
	Exec(context.Context, string) (string, error)
}, p string) string {
	t.Helper()
	out, _ := h.Exec(context.Background(), "cat "+shq(p)+" 2>/dev/null")
	return strings.TrimSpace(out)
}

func TestLayoutOf(t *testing.T) {
	links := []Link{
		{Path: "/opt/app", Target: "/opt/releases/v1", Symlink: true},
		{Path: "/opt/cur/conf", Target: "/opt/releases/v1/conf"},
		{Path: "/opt/up", Target: "/opt", Symlink: true},
	}
	cases := []struct {
		paths        []string
		trees, links string
	}{
		{[]string{"/opt/app"}, "/opt/releases/v1", "/opt/app"},
		{[]string{"/opt/app", "/opt/releases"}, "/opt/releases", "/opt/app"},
		{[]string{"/opt/app", "/opt/cur/conf"}, "/opt/releases/v1", "/opt/app"},
		{[]string{"/opt/cur/conf", "/etc/app"}, "/etc/app /opt/releases/v1/conf", ""},
		{[]string{"/opt/up", "/opt/app"}, "/opt", ""},
	}
	for _, c := range cases {
		l := layoutOf(c.paths, links)
		if got := strings.Join(l.trees, " "); got != c.trees {
			t.Errorf("%v: trees %q, want %q", c.paths, got, c.trees)
		}
		if got := strings.Join(l.links, " "); got != c.links {
			t.Errorf("%v: links %q, want %q", c.paths, got, c.links)
		}
	}
	m := mapPaths([]string{"/opt/app/conf", "/opt/app", "/etc/app"}, links)
	if got := strings.Join(m.members(), " "); got != "/etc/app /opt/releases/v1 /opt/releases/v1/conf /opt/app" {
		t.Errorf("mapPaths: %q", got)
	}
}
