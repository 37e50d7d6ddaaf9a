package release_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/commandcheck"
	"github.com/upgrader-dev/upgrader/modules/httpcheck"
	"github.com/upgrader-dev/upgrader/modules/modtest"
	"github.com/upgrader-dev/upgrader/modules/release"
	"github.com/upgrader-dev/upgrader/modules/run"
	"github.com/upgrader-dev/upgrader/modules/template"
	"github.com/upgrader-dev/upgrader/modules/upload"
)

var (
	actions = map[string]modules.Action{"upload": &upload.Upload{}, "template": &template.Template{}, "release": &release.Release{}, "run": &run.Run{}}
	probes  = map[string]modules.Probe{"http": &httpcheck.HTTP{}, "command": &commandcheck.Command{}}
)

func specOf(kind string) hcldec.Spec {
	if a, ok := actions[kind]; ok {
		return a.Spec()
	}
	if p, ok := probes[kind]; ok {
		return p.Spec()
	}
	return nil
}

// TestScenario_deploy runs testdata/scenario on a real host the way a step
// and a check run: upload, template (sudo, sensitive var), run (service
// reload guarded by unless), release (activate restarts the service); then
// the HTTP and command checks pass against the service on the host, a
// re-plan changes nothing, and undoing every action, newest first, brings
// back the exact previous files and the previous version serving HTTP.
func TestScenario_deploy(t *testing.T) {
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
	t.Cleanup(func() {
		h.Exec(context.Background(), `p=/opt/app/shared/run/app.pid; [ -f $p ] && kill $(cat $p); true`)
	})
	exec(`mkdir -p /opt/app && chown deploy:deploy /opt/app /var/log/app &&
printf 'version = 1.0.0\ndb_password = old\n' > /etc/app/app.conf && chmod 0600 /etc/app/app.conf`)

	dir := t.TempDir()
	src, err := filepath.Abs("testdata/scenario")
	if err != nil {
		t.Fatal(err)
	}
	restart, err := os.ReadFile(filepath.Join(src, "restart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		data := modtest.TarGzFiles(t,
			modtest.TarFile{Name: "bin/restart", Body: string(restart), Mode: 0o755},
			modtest.TarFile{Name: "public/version.txt", Body: v + "\n"})
		if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dist", "app-"+v+".tar.gz"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"app.conf.tmpl", "files/motd.txt"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}
	scope := func(version string) *hcl.EvalContext {
		return &hcl.EvalContext{Variables: map[string]cty.Value{
			"var": cty.ObjectVal(map[string]cty.Value{
				"version": cty.StringVal(version),
				"secret":  cty.StringVal("s3cr3t-pw").Mark(modtest.SensitiveMark),
			}),
			"host": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("web"), "address": cty.StringVal(h.Address)}),
		}}
	}
	load := func(file, version string) []modtest.Decoded {
		b, err := os.ReadFile(filepath.Join(src, file))
		if err != nil {
			t.Fatal(err)
		}
		ds, diags := modtest.DecodeAll(file, b, specOf, scope(version), dir)
		for _, d := range ds {
			if v, ok := specModule(d.Kind).(modules.Validator); ok && !diags.HasErrors() {
				diags = append(diags, v.Validate(d.Config)...)
			}
		}
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return ds
	}
	check := func(version string) {
		t.Helper()
		for _, d := range load("check.hcl", version) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := probes[d.Kind].Check(ctx, &modules.Request{Config: d.Config, Node: "check.smoke", Index: -1, Env: env})
			cancel()
			if err != nil {
				t.Fatalf("%s check for %s: %v", d.Kind, version, err)
			}
		}
	}
	r := &modtest.Runner{T: t, Env: env, Host: "web", Dir: dir}

	// The host runs 1.0.0, installed by the release action itself.
	install := load("step.hcl", "1.0.0")[3]
	r.MustApply(actions["release"], install.Config)
	check2 := func() string { return exec("curl -fsS http://127.0.0.1:8080/version.txt") }
	if got := check2(); got != "1.0.0\n" {
		t.Fatalf("1.0.0 not serving: %q", got)
	}
	snap := func() string {
		return modtest.Snapshot(t, h.Exec, []string{"/opt/app", "/etc/app"}, "/opt/app/shared/run", ".upgrader-pruned-")
	}
	before := snap()

	// Plan 2.0.0: every action changes something; the secret never shows.
	env.ID = "r2"
	step := load("step.hcl", "2.0.0")
	want := []modules.Change{modules.Create, modules.Update, modules.Exec, modules.Update}
	for i, d := range step {
		p := r.Plan(actions[d.Kind], d.Config)
		if p.Change != want[i] {
			t.Fatalf("plan %s = %s (%s), want %s", d.Kind, p.Change, p.Summary, want[i])
		}
		if strings.Contains(p.Summary+p.Detail, "s3cr3t") || strings.Contains(p.Summary+p.Detail, "db_password = old") {
			t.Fatalf("plan %s shows a secret:\n%s", d.Kind, p.Detail)
		}
		if d.Kind == "template" && !strings.Contains(p.Detail, "+version     = 2.0.0") {
			t.Fatalf("template diff:\n%s", p.Detail)
		}
		if d.Kind == "release" && p.Summary != "current: 1.0.0 -> 2.0.0" {
			t.Fatalf("release plan: %s", p.Summary)
		}
	}

	// Apply in order, keeping the undo states.
	states := make([]json.RawMessage, len(step))
	for i, d := range step {
		out, st := r.MustApply(actions[d.Kind], d.Config)
		if !out.Changed {
			t.Fatalf("apply %s changed nothing: %s %s", d.Kind, out.Message, out.Skipped)
		}
		states[i] = st
	}
	check("2.0.0")
	if got := exec("stat -c '%a %U:%G' /etc/app/app.conf"); got != "640 root:deploy\n" {
		t.Fatalf("app.conf mode/owner: %q", got)
	}

	// Re-plan: nothing left to do.
	for _, d := range step {
		p := r.Plan(actions[d.Kind], d.Config)
		if p.Change != modules.NoOp && p.Change != modules.Skip {
			t.Fatalf("re-plan %s = %s (%s), want = or skip", d.Kind, p.Change, p.Summary)
		}
	}

	// Undo newest first (run has no undo of its own: a rollback block's job).
	for i := len(step) - 1; i >= 0; i-- {
		if _, ok := actions[step[i].Kind].(modules.Undoer); ok {
			r.Undo(actions[step[i].Kind], step[i].Config, states[i])
		}
	}
	if after := snap(); after != before {
		t.Fatalf("undo did not restore the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := check2(); got != "1.0.0\n" {
		t.Fatalf("after undo the service serves %q, want 1.0.0", got)
	}
	check1 := load("check.hcl", "1.0.0")[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := probes["http"].Check(ctx, &modules.Request{Config: check1.Config, Env: env}); err != nil {
		t.Fatalf("http check of 1.0.0 after undo: %v", err)
	}
}

func specModule(kind string) modules.Module {
	if a, ok := actions[kind]; ok {
		return a
	}
	return probes[kind]
}
