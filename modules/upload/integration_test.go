package upload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// hostRunner starts one real test host and returns a Runner on it plus the host.
func hostRunner(t *testing.T) (*modtest.Runner, *testbed.Host) {
	bed := testbed.New(t, "web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	env := &modtest.Env{ID: "run1", Dir: t.TempDir(), Targets: map[string]modules.Target{"web": tg}}
	return &modtest.Runner{T: t, Env: env, Host: "web", Dir: t.TempDir()}, bed.Host("web")
}

func exec(t *testing.T, h *testbed.Host, cmd string) string {
	t.Helper()
	out, err := h.Exec(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeLocal(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Against a real host: new file, changed file (mode kept), directory,
// sudo with owner/group; each re-plans as = and undoes to the exact
// previous bytes, modes and owners.
func TestUpload_realHost(t *testing.T) {
	r, h := hostRunner(t)
	exec(t, h, `mkdir -p /opt/app/conf && chown -R deploy:deploy /opt/app &&
printf 'old\n' > /opt/app/conf/app.conf && chmod 0600 /opt/app/conf/app.conf && chown deploy:deploy /opt/app/conf/app.conf &&
printf 'root only\n' > /etc/app/secret.conf && chmod 0640 /etc/app/secret.conf &&
mkdir -p /opt/app/shared /opt/app/releases/1/config && printf 'shared\n' > /opt/app/shared/app.conf &&
ln -s ../../../shared/app.conf /opt/app/releases/1/config/app.conf && ln -s /opt/app/releases/1 /opt/app/current &&
chown -R -h deploy:deploy /opt/app`)
	snap := func() string {
		return modtest.Snapshot(t, h.Exec, []string{"/opt/app", "/etc/app"})
	}
	before := snap()
	writeLocal(t, r.Dir, "files/app.conf", "new content\n")
	writeLocal(t, r.Dir, "static/index.html", "<h1>v2</h1>\n")
	writeLocal(t, r.Dir, "static/css/site.css", "body{}\n")
	writeLocal(t, r.Dir, "files/secret.conf", "db_password = x\n")
	u := &Upload{}
	cases := []struct {
		name, src, wantPlan string
		check               string // command whose output must hold want
		want                string
	}{
		{"changed file keeps mode", `upload {
  source = "files/app.conf"
  destination = "/opt/app/conf/app.conf"
}`, "~", "stat -c '%a %U' /opt/app/conf/app.conf; cat /opt/app/conf/app.conf", "600 deploy\nnew content\n"},
		{"new file in new dirs", `upload {
  source = "files/app.conf"
  destination = "/opt/app/new/deep/app.conf"
  mode = "0755"
}`, "+", "stat -c '%a' /opt/app/new/deep/app.conf", "755\n"},
		{"directory", `upload {
  source = "static"
  destination = "/opt/app/static"
}`, "+", "cat /opt/app/static/index.html /opt/app/static/css/site.css", "<h1>v2</h1>\nbody{}\n"},
		{"through a symlink", `upload {
  source = "files/app.conf"
  destination = "/opt/app/current/config/app.conf"
}`, "~", "readlink /opt/app/releases/1/config/app.conf; cat /opt/app/shared/app.conf", "../../../shared/app.conf\nnew content\n"},
		{"sudo owner group", `upload {
  source = "files/secret.conf"
  destination = "/etc/app/secret.conf"
  mode = "0640"
  owner = "root"
  group = "deploy"
  sudo = true
}`, "~", "stat -c '%a %U:%G' /etc/app/secret.conf; cat /etc/app/secret.conf", "640 root:deploy\ndb_password = x\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.T = t
			cfg := r.Decode(u, c.src)
			if p := r.Plan(u, cfg); string(p.Change) != c.wantPlan {
				t.Fatalf("plan = %s (%s), want %s", p.Change, p.Summary, c.wantPlan)
			}
			out, state := r.MustApply(u, cfg)
			if !out.Changed {
				t.Fatalf("apply changed nothing: %s", out.Message)
			}
			if got := exec(t, h, c.check); got != c.want {
				t.Fatalf("after apply %q = %q, want %q", c.check, got, c.want)
			}
			if p := r.Plan(u, cfg); p.Change != modules.NoOp {
				t.Fatalf("re-plan = %s (%s), want =", p.Change, p.Summary)
			}
			if out, _ := r.MustApply(u, cfg); out.Changed {
				t.Fatalf("re-apply changed something: %s", out.Message)
			}
			r.Undo(u, cfg, state)
			if after := snap(); after != before {
				t.Fatalf("undo did not restore the previous state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// A write that fails half way (a directory upload whose second file cannot
// be written) restores the first file: no mix of old and new stays.
func TestUpload_failureRestores(t *testing.T) {
	r, h := hostRunner(t)
	exec(t, h, `mkdir -p /opt/app/site/b && printf 'A1\n' > /opt/app/site/a.txt && chown -R deploy:deploy /opt/app &&
chown root:root /opt/app/site/b && chmod 0755 /opt/app/site/b`)
	before := modtest.Snapshot(t, h.Exec, []string{"/opt/app"})
	writeLocal(t, r.Dir, "site/a.txt", "A2\n")
	writeLocal(t, r.Dir, "site/b/b.txt", "B2\n")
	u := &Upload{}
	cfg := r.Decode(u, `upload {
  source = "site"
  destination = "/opt/app/site"
}`)
	_, _, err := r.Apply(u, cfg)
	if err == nil || !strings.Contains(err.Error(), `host "web"`) || !strings.Contains(err.Error(), "previous files restored") {
		t.Fatalf("err = %v, want a failure naming the host and saying the files were restored", err)
	}
	if after := modtest.Snapshot(t, h.Exec, []string{"/opt/app"}); after != before {
		t.Fatalf("a failed upload changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// BenchmarkUpload_realHost measures the upload action end to end on a real
// host: sha256 plan probe, previous-content copy, atomic write of 16 MiB.
func BenchmarkUpload_realHost(b *testing.B) {
	testbed.Require(b)
	bed := testbed.New(b, "web")
	tg, err := bed.Target("web")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bed.Host("web").Exec(b.Context(), "mkdir -p /opt/app && chown deploy /opt/app"); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	data := make([]byte, 16<<20)
	r := &modtest.Runner{T: b, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	u := &Upload{}
	cfg := r.Decode(u, `upload {
  source = "big.bin"
  destination = "/opt/app/big.bin"
}`)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		data[0] = byte(i + 1) // new content every time: a real write
		if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		if out, _ := r.MustApply(u, cfg); !out.Changed {
			b.Fatal("nothing written")
		}
	}
}

// The copy of the previous content stays beside the target for this run's
// undo; the next run that writes the file removes the older copy.
func TestUpload_previousCopies(t *testing.T) {
	r, h := hostRunner(t)
	exec(t, h, `mkdir -p /opt/app && printf 'v0\n' > /opt/app/a.conf && chown -R deploy:deploy /opt/app`)
	u := &Upload{}
	for i, run := range []string{"r1", "r2"} {
		writeLocal(t, r.Dir, "a.conf", "v"+string(rune('1'+i))+"\n")
		r.Env.ID = run
		r.MustApply(u, r.Decode(u, `upload {
  source = "a.conf"
  destination = "/opt/app/a.conf"
}`))
	}
	if got := exec(t, h, "cd /opt/app && ls -a | sed 's/prev-r2[.][a-z0-9]*$/prev-r2.RANDOM/' && cat a.conf a.conf.upgrader-prev-r2.*"); got != ".\n..\na.conf\na.conf.upgrader-prev-r2.RANDOM\nv2\nv1\n" {
		t.Fatalf("got %q", got)
	}
}
