package main

import (
	"io/fs"

	"archive/tar"
	"bytes"
	"compress/gzip"
	"github.com/hashicorp/hcl/v2"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInit_writesStarter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "upgrade")
	var out, errb bytes.Buffer
	if code := realMain([]string{"init", dir}, &out, &errb); code != exitOK {
		t.Fatalf("init = %d: %s", code, errb.String())
	}
	for _, f := range []string{"upgrade.hcl", "variables.hcl", "hosts.hcl", "README.md", "templates/app.conf.tmpl", "templates/upstream.conf.tmpl", "templates/nginx.conf.tmpl", "migrations/README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
		if !strings.Contains(out.String(), filepath.Join(dir, f)) {
			t.Errorf("init's output does not list %s:\n%s", f, out.String())
		}
	}

	// A second init refuses, names the files, and writes nothing.
	os.WriteFile(filepath.Join(dir, "hosts.hcl"), []byte("# mine\n"), 0o644)
	os.Remove(filepath.Join(dir, "README.md"))
	errb.Reset()
	if code := realMain([]string{"init", dir}, &out, &errb); code != exitInvalid {
		t.Fatalf("second init = %d, want %d", code, exitInvalid)
	}
	if !strings.Contains(errb.String(), "hosts.hcl") || !strings.Contains(errb.String(), "-force") {
		t.Errorf("refusal does not name the files or -force: %s", errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err == nil {
		t.Error("a refused init wrote README.md")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "hosts.hcl")); string(data) != "# mine\n" {
		t.Error("a refused init overwrote hosts.hcl")
	}

	if code := realMain([]string{"init", "-force", dir}, &out, &errb); code != exitOK {
		t.Fatalf("init -force = %d: %s", code, errb.String())
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "hosts.hcl")); string(data) == "# mine\n" {
		t.Error("init -force kept the old hosts.hcl")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestInit_validates loads and validates what init wrote (lang + executor,
// as `upgrader validate` does), with the DSNs given the way the starter's
// README says and stand-in release tarballs (validate checks they exist).
func TestInit_validates(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := realMain([]string{"init", dir}, &out, &errb); code != exitOK {
		t.Fatalf("init = %d: %s", code, errb.String())
	}
	validates(t, dir)
}

// TestExample_validates does the same for examples/active-standby itself
// and its bootstrap configuration, with a hosts.hcl like testenv writes.
func TestExample_validates(t *testing.T) {
	for _, sub := range []string{"", "bootstrap"} {
		t.Run("active-standby/"+sub, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "../../examples/active-standby", dir)
			hosts, err := initFiles.ReadFile("initdata/hosts.hcl")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, sub, "hosts.hcl"), hosts, 0o644)
			if sub == "" {
				validates(t, dir)
			} else {
				validates(t, filepath.Join(dir, sub))
			}
		})
	}
}

func validates(t *testing.T, dir string) {
	t.Helper()
	root := dir
	if filepath.Base(dir) == "bootstrap" {
		root = filepath.Dir(dir)
	}
	os.MkdirAll(filepath.Join(root, "dist"), 0o755)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		writeTarGz(t, filepath.Join(root, "dist", "app-"+v+".tar.gz"), "bin/start", "#!/bin/sh\n")
	}
	reg := newRegistry()
	for _, kind := range []string{"schema_check", "migrate"} {
		if _, ok := reg.Node(kind); !ok {
			t.Skipf("the procedure uses %s, which is not in the registry yet", kind)
		}
	}
	cfg, ds := lang.Load(dir, executor.Schemas(reg), lang.Options{Env: map[string]string{
		"UPGRADER_VAR_prod_dsn":       "postgres://app:secret@198.51.100.20:5432/prod",
		"UPGRADER_VAR_test_dsn":       "postgres://app:secret@198.51.100.20:5432/test",
		"UPGRADER_VAR_prometheus_url": "http://198.51.100.20:9090",
	}})
	if !ds.HasErrors() {
		ds = append(ds, executor.Validate(cfg, reg)...)
	}
	if ds.HasErrors() {
		var buf bytes.Buffer
		files := map[string]*hcl.File{}
		if cfg != nil {
			files = cfg.Files
		}
		hcl.NewDiagnosticTextWriter(&buf, files, 100, false).WriteDiagnostics(ds)
		t.Fatalf("%s does not validate:\n%s", dir, buf.String())
	}
}

// copyTree copies a directory's regular files (symlinks as links), skipping
// dist, state and hosts files.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (d.Name() == "dist" || strings.HasPrefix(d.Name(), ".") && rel != ".") {
			return filepath.SkipDir
		}
		if d.Name() == "hosts.hcl" {
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeTarGz writes a one-file release tarball.
func writeTarGz(t *testing.T, name, member, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: member, Mode: 0o755, Size: int64(len(content))})
	tw.Write([]byte(content))
	tw.Close()
	zw.Close()
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
