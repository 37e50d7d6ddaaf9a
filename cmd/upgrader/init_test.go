package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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

// TestInit_matchesExample keeps the starter equal to the procedure that the
// end-to-end tests run (examples/active-standby).
func TestInit_matchesExample(t *testing.T) {
	for _, f := range []string{"upgrade.hcl", "variables.hcl", "templates/app.conf.tmpl", "templates/upstream.conf.tmpl", "templates/nginx.conf.tmpl"} {
		want, err := os.ReadFile(filepath.Join("../../examples/active-standby", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := initFiles.ReadFile("initdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("initdata/%s differs from examples/active-standby/%s: copy it (cp examples/active-standby/%s cmd/upgrader/initdata/%s)", f, f, f, f)
		}
	}
}

// TestInit_validates runs the real `upgrader validate` on what init wrote,
// with the DSNs given the way the starter's README says.
func TestInit_validates(t *testing.T) {
	if _, ok := commands["validate"]; !ok {
		t.Skip("upgrader validate is not registered in this build")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := realMain([]string{"init", dir}, &out, &errb); code != exitOK {
		t.Fatalf("init = %d: %s", code, errb.String())
	}
	// The release tarballs are the user's; validate may look for them.
	os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		writeTarGz(t, filepath.Join(dir, "dist", "app-"+v+".tar.gz"), "bin/start", "#!/bin/sh\n")
	}
	t.Setenv("UPGRADER_VAR_prod_dsn", "postgres://app:secret@198.51.100.20:5432/prod")
	t.Setenv("UPGRADER_VAR_test_dsn", "postgres://app:secret@198.51.100.20:5432/test")
	out.Reset()
	errb.Reset()
	if code := realMain([]string{"validate", "-no-color", dir}, &out, &errb); code != exitOK {
		t.Fatalf("validate of the starter = %d:\n%s%s", code, out.String(), errb.String())
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
