package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// evalCtx is a scope with the references tests use: host.web, host.db,
// database.prod, database.my and backup.web / backup.old (with an id).
func evalCtx() *hcl.EvalContext {
	host := func(n string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(n), "address": cty.StringVal("198.51.100.9"),
			"port": cty.NumberIntVal(22), "user": cty.StringVal("deploy"), "labels": cty.EmptyObjectVal})
	}
	db := func(n, d string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(n), "driver": cty.StringVal(d)})
	}
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"host":     cty.ObjectVal(map[string]cty.Value{"web": host("web"), "db": host("db")}),
		"database": cty.ObjectVal(map[string]cty.Value{"prod": db("prod", "postgres"), "my": db("my", "mysql")}),
		"backup": cty.ObjectVal(map[string]cty.Value{
			"web": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("web"), "kind": cty.StringVal("backup"), "id": cty.UnknownVal(cty.String)}),
			"db":  cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("db"), "kind": cty.StringVal("backup"), "id": cty.UnknownVal(cty.String)}),
			"old": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("old"), "kind": cty.StringVal("backup"), "id": cty.StringVal("r0/old")}),
		}),
		"step": cty.ObjectVal(map[string]cty.Value{
			"x": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x"), "kind": cty.StringVal("step")}),
		}),
	}}
}

// decode decodes an HCL source holding one block with m's spec.
func decode(t testing.TB, m modules.Module, src string) *modules.Config {
	t.Helper()
	cfg, d := modtest.DecodeBlock("test.hcl", []byte(src), m.Spec(), evalCtx(), t.TempDir())
	if d.HasErrors() {
		t.Fatalf("decode: %s", d.Error())
	}
	return cfg
}

// TestValidate_testdata checks every file in testdata/validate: a valid
// file has no diagnostics, an invalid one exactly its `# ERROR:` lines.
func TestValidate_testdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/validate/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata/validate/*.hcl")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var m interface {
				modules.Module
				modules.Validator
			} = &Backup{}
			if strings.HasPrefix(strings.TrimSpace(string(src)), "restore") {
				m = &Restore{}
			}
			cfg, d := modtest.DecodeBlock(f, src, m.Spec(), evalCtx(), "testdata")
			if !d.HasErrors() {
				d = append(d, m.Validate(cfg)...)
			}
			for _, p := range modtest.MatchErrors(d, modtest.ErrorComments(src)) {
				t.Error(p)
			}
		})
	}
}

func TestBackup_protects(t *testing.T) {
	b := &Backup{}
	hosts, dbs := b.Protects(decode(t, b, `backup { 
  host = host.web
  paths = ["/opt/app"]
}`))
	if fmt.Sprint(hosts, dbs) != "[web] []" {
		t.Errorf("host backup protects %v %v", hosts, dbs)
	}
	hosts, dbs = b.Protects(decode(t, b, `backup { database = database.prod }`))
	if fmt.Sprint(hosts, dbs) != "[] [prod]" {
		t.Errorf("database backup protects %v %v", hosts, dbs)
	}
}

// localEnv is a modtest.Env whose host "web" is this machine.
func localEnv(t *testing.T, run string) (*modtest.Env, *localTarget) {
	lt := newLocalTarget("web")
	return &modtest.Env{ID: run, Dir: t.TempDir(), Targets: map[string]modules.Target{"web": lt}}, lt
}

func hostBackupSrc(root string) string {
	return fmt.Sprintf(`backup {
  host    = host.web
  paths   = [%q, %q]
  exclude = ["*.tmp", %q]
}`, root+"/app", root+"/etc", root+"/app/cache")
}

// TestBackup_roundTripLocal backs up a tree with this machine's tar and
// find, changes it, restores it and compares entry by entry.
func TestBackup_roundTripLocal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tree has files of other owners")
	}
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf(makeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(ctx, t, localExec, root)
	env, _ := localEnv(t, "r1")
	b := &Backup{Version: "test"}
	var log bytes.Buffer
	req := &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Index: -1, Env: env, Log: &log}
	out, err := b.Apply(ctx, req)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, log.String())
	}
	if got := out.Outputs["id"].AsString(); got != "r1/web" {
		t.Errorf("id = %q", got)
	}
	m, err := ReadManifest(Dir(env.Dir, "r1", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != out.Outputs["sha256"].AsString() || m.Files < 20 || m.Version != "test" || m.Kind != KindHost {
		t.Errorf("manifest %+v, outputs %v", m, out.Outputs)
	}
	if env.Done != m.Bytes || env.Total <= 0 {
		t.Errorf("progress %d/%d, want %d/estimate", env.Done, env.Total, m.Bytes)
	}
	if _, err := localExec(ctx, fmt.Sprintf(changeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	checkSnapshotSane(t, before, snapshot(ctx, t, localExec, root))
	r := &Restore{}
	rcfg := decode(t, r, `restore { backup = backup.web }`)
	if _, err := r.Apply(ctx, &modules.Request{Config: rcfg, Node: "step.x", Host: "web", Env: env, Log: &log}); err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	after := snapshot(ctx, t, localExec, root)
	compareTrees(t, before, after)
	// Excluded files are left as they were before the restore.
	for _, p := range []string{"./app/log.tmp", "./app/cache/page2"} {
		if _, ok := after[p]; !ok {
			t.Errorf("excluded %s was removed by the restore", p)
		}
	}
}

// TestRestore_subset restores one directory of a backup and leaves the rest.
func TestRestore_subset(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf(makeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(ctx, t, localExec, root)
	env, _ := localEnv(t, "r1")
	b := &Backup{}
	if _, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := localExec(ctx, fmt.Sprintf(changeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	changed := snapshot(ctx, t, localExec, root)
	r := &Restore{}
	cfg := decode(t, r, fmt.Sprintf(`restore {
  backup = backup.web
  paths  = [%q]
}`, root+"/app/sub"))
	if _, err := r.Apply(ctx, &modules.Request{Config: cfg, Env: env, Log: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(ctx, t, localExec, root)
	for p, v := range after {
		inSub := strings.HasPrefix(p, "./app/sub/") || p == "./app/sub"
		want := changed[p]
		if inSub {
			want = before[p]
		}
		if v != want {
			t.Errorf("%s: got %s, want %s", p, v, want)
		}
	}
	// A path the backup does not cover is refused before anything changes.
	cfg = decode(t, r, `restore {
  backup = backup.web
  paths  = ["/nowhere"]
}`)
	_, err := r.Apply(ctx, &modules.Request{Config: cfg, Env: env, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "not in the backup") {
		t.Errorf("restore of a path outside the backup: %v", err)
	}
}

// TestVerify_corruptArchive flips one byte of an archive: verify and
// restore both refuse it, and restore changes nothing on the host.
func TestVerify_corruptArchive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf(makeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	env, _ := localEnv(t, "r1")
	b := &Backup{}
	if _, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	dir := Dir(env.Dir, "r1", "web")
	if _, _, err := VerifyDir(ctx, dir); err != nil {
		t.Fatalf("fresh backup does not verify: %v", err)
	}
	flipByte(t, filepath.Join(dir, hostArchive))
	if _, _, err := VerifyDir(ctx, dir); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("verify of a corrupted archive: %v", err)
	}
	if _, err := localExec(ctx, fmt.Sprintf(changeTree, shq(root))); err != nil {
		t.Fatal(err)
	}
	changed := snapshot(ctx, t, localExec, root)
	r := &Restore{}
	_, err := r.Apply(ctx, &modules.Request{Config: decode(t, r, `restore { backup = backup.web }`), Env: env, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "nothing was restored") {
		t.Errorf("restore of a corrupted archive: %v", err)
	}
	compareTrees(t, changed, snapshot(ctx, t, localExec, root))
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	off := fi.Size() / 2
	buf := make([]byte, 1)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 0x01
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// TestBackup_cutStream: a stream that breaks half-way leaves no archive
// and no manifest, only an error naming the host.
func TestBackup_cutStream(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf("mkdir -p %[1]s/app %[1]s/etc && head -c 3000000 /dev/urandom > %[1]s/app/big", shq(root))); err != nil {
		t.Fatal(err)
	}
	env, lt := localEnv(t, "r1")
	lt.cutAfter = 1 << 20
	b := &Backup{}
	_, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), `host "web"`) {
		t.Fatalf("cut backup: %v", err)
	}
	dir := Dir(env.Dir, "r1", "web")
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("a cut backup left %v", left)
	}
	es, _ := List(env.Dir)
	if len(es) != 1 || es[0].Complete() || es[0].Problem == "" {
		t.Errorf("list after a cut backup: %+v", es)
	}
}

// TestBackup_missingPath names the path and the host, at plan and apply.
func TestBackup_missingPath(t *testing.T) {
	ctx := context.Background()
	env, _ := localEnv(t, "r1")
	b := &Backup{}
	cfg := decode(t, b, `backup {
  host  = host.web
  paths = ["/nonexistent/upgrader-test"]
}`)
	req := &modules.Request{Config: cfg, Node: "backup.web", Env: env, Log: &bytes.Buffer{}}
	_, err := b.Plan(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/upgrader-test") || !strings.Contains(err.Error(), `host "web"`) {
		t.Errorf("plan: %v", err)
	}
	_, err = b.Apply(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/upgrader-test") {
		t.Errorf("apply: %v", err)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, backupsDir)); !os.IsNotExist(err) {
		t.Errorf("a failed backup wrote to the state directory: %v", err)
	}
}

// TestBackup_noSpace: not enough free space is an error before anything is written.
func TestBackup_noSpace(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf("mkdir -p %[1]s/app %[1]s/etc && head -c 100000 /dev/zero > %[1]s/app/f", shq(root))); err != nil {
		t.Fatal(err)
	}
	old := freeSpace
	freeSpace = func(string) (int64, error) { return 5000, nil }
	defer func() { freeSpace = old }()
	env, _ := localEnv(t, "r1")
	b := &Backup{}
	req := &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}}
	for _, f := range []func() error{
		func() error { _, err := b.Plan(ctx, req); return err },
		func() error { _, err := b.Apply(ctx, req); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "not enough space") {
			t.Errorf("got %v, want not enough space", err)
		}
	}
	if _, err := os.Stat(filepath.Join(env.Dir, backupsDir)); !os.IsNotExist(err) {
		t.Errorf("a refused backup wrote to the state directory: %v", err)
	}
}

// TestRestore_planBeforeBackup: at plan time the backup is not taken yet;
// the plan names what the backup block covers (its plan outputs) and probes
// the host read-only for what will be replaced.
func TestRestore_planBeforeBackup(t *testing.T) {
	ctx := context.Background()
	env, _ := localEnv(t, "r1")
	env.PlanOnly = true
	dir := t.TempDir()
	r := &Restore{}
	p, err := r.Plan(ctx, &modules.Request{Config: decode(t, r, `restore { backup = backup.web }`), Env: env, Log: &bytes.Buffer{}})
	if err != nil || p.Summary != "the backup's host <- backup r1/web (taken earlier in this run): replaces the backed-up paths" {
		t.Errorf("plan without outputs: %+v %v", p, err)
	}
	cfg := decode(t, r, fmt.Sprintf(`restore {
  backup = { name = "web", kind = "backup", host = "web", paths = [%q, %q] }
}`, dir, dir+"/missing"))
	p, err = r.Plan(ctx, &modules.Request{Config: cfg, Env: env, Log: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	want := "~ " + dir + " (replaced by the backup's content)\n+ " + dir + "/missing (missing now, restored)"
	if p.Change != modules.Update || p.Detail != want || !strings.HasPrefix(p.Summary, "host web <- backup r1/web") {
		t.Errorf("plan:\n%s\n%s\nwant detail:\n%s", p.Summary, p.Detail, want)
	}
	// A subset outside what the backup covers is refused at plan.
	cfg = decode(t, r, fmt.Sprintf(`restore {
  backup = { name = "web", kind = "backup", host = "web", paths = [%q] }
  paths  = ["/elsewhere"]
}`, dir))
	if _, err := r.Plan(ctx, &modules.Request{Config: cfg, Env: env, Log: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "not in the backup") {
		t.Errorf("plan of a path outside the backup: %v", err)
	}
}

// TestBackup_takenAgain: a backup run again in the same run (a resumed
// run) replaces the first one, and a temporary file a crash left is gone.
func TestBackup_takenAgain(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if _, err := localExec(ctx, fmt.Sprintf("mkdir -p %[1]s/app %[1]s/etc && echo one > %[1]s/app/f", shq(root))); err != nil {
		t.Fatal(err)
	}
	env, _ := localEnv(t, "r1")
	b := &Backup{}
	req := &modules.Request{Config: decode(t, b, hostBackupSrc(root)), Node: "backup.web", Env: env, Log: &bytes.Buffer{}}
	first, err := b.Apply(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	dir := Dir(env.Dir, "r1", "web")
	os.WriteFile(filepath.Join(dir, hostArchive+tmpSuffix), []byte("left by a crash"), 0o600)
	if _, err := localExec(ctx, fmt.Sprintf("echo two > %s/app/f", shq(root))); err != nil {
		t.Fatal(err)
	}
	second, err := b.Apply(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Outputs["sha256"].Equals(second.Outputs["sha256"]).True() {
		t.Error("the second backup has the first one's sha256")
	}
	m, _, err := VerifyDir(ctx, dir)
	if err != nil || m.SHA256 != second.Outputs["sha256"].AsString() {
		t.Errorf("verify after the second backup: %v", err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 2 {
		t.Errorf("backup directory holds %v, want the archive and the manifest", files)
	}
}

// FuzzValidate: no body, however wrong its values, panics Validate, Plan's
// decoding or Protects.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`host = host.web
paths = ["/opt/app"]`,
		`database = database.prod
keep_runs = 1e400`,
		`host = [host.web, 1]
exclude = [null]`,
		`paths = ["/", "//x/../y", ""]
host = {name = null}`,
		`keep_runs = -0.5
timeout = "-1s"`,
	} {
		f.Add(s, `backup = backup.web
paths = ["/x"]`)
	}
	f.Fuzz(func(t *testing.T, body, rbody string) {
		for _, c := range []struct {
			m interface {
				modules.Module
				modules.Validator
			}
			src string
		}{{&Backup{}, "backup {\n" + body + "\n}\n"}, {&Restore{}, "restore {\n" + rbody + "\n}\n"}} {
			cfg, d := modtest.DecodeBlock("fuzz.hcl", []byte(c.src), c.m.Spec(), evalCtx(), t.TempDir())
			if cfg == nil || d.HasErrors() {
				continue
			}
			c.m.Validate(cfg)
			if b, ok := c.m.(*Backup); ok {
				b.Protects(cfg)
			}
		}
	})
}
