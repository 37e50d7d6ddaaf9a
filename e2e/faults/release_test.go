package faults

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeArtifact writes a release tarball holding VERSION.
func writeArtifact(t *testing.T, path, version string) {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	body := version + "\n"
	tw.WriteHeader(&tar.Header{Name: "VERSION", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
	tw.Write([]byte(body))
	tw.Close()
	gz.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRelease_currentNeverMissing: while real applies switch `current`
// between releases (v1, v2, v3, back to v2 by a rollback), readers on the
// host read current/VERSION in a tight loop: not one read finds it missing.
func TestRelease_currentNeverMissing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	w.exec("web", "rm -rf /opt/rel && mkdir -p /opt/rel && chown deploy: /opt/rel")
	for _, v := range []string{"1", "2", "3"} {
		writeArtifact(t, filepath.Join(w.dir, "app-"+v+".tar.gz"), v)
	}
	w.write("main.hcl", `
variable "version" {
  type = string
}

step "deploy" {
  host            = host.web
  backup_required = false
  release {
    artifact = "app-${var.version}.tar.gz"
    dir      = "/opt/rel"
    version  = var.version
    keep     = 3
  }
}
`)
	if r := w.upgrader("apply", "-auto-approve", "-no-color", "-var", "version=1"); r.code != 0 {
		t.Fatalf("first apply: %s", r)
	}
	// Two readers, each counting reads that found current/VERSION and reads
	// that did not, until /opt/rel/stop appears (shell built-ins only: a
	// read every few microseconds, not one per fork).
	reader := `ok=0; miss=0; while [ ! -e /opt/rel/stop ]; do if read v 2>/dev/null < /opt/rel/current/VERSION; then ok=$((ok+1)); else miss=$((miss+1)); fi; done; echo "$ok $miss"`
	type counts struct {
		ok, miss int
		err      error
	}
	res := make(chan counts, 2)
	for range 2 {
		go func() {
			out, err := w.bed.Host("web").Exec(context.Background(), reader)
			var c counts
			c.err = err
			fmt.Sscan(out, &c.ok, &c.miss)
			res <- c
		}()
	}
	for _, v := range []string{"2", "3", "2", "3"} {
		if r := w.upgrader("apply", "-auto-approve", "-no-color", "-var", "version="+v); r.code != 0 {
			t.Fatalf("apply version %s: %s", v, r)
		}
	}
	if r := w.upgrader("rollback", "-no-color"); r.code != 0 {
		t.Fatalf("rollback: %s", r)
	}
	if got := hostCatW(w, "/opt/rel/current/VERSION"); got != "2" {
		t.Errorf("after the rollback current is %q, want 2", got)
	}
	w.exec("web", "touch /opt/rel/stop")
	for range 2 {
		c := <-res
		if c.err != nil {
			t.Fatal(c.err)
		}
		if c.ok == 0 || c.miss != 0 {
			t.Errorf("readers: %d reads found current, %d found it missing", c.ok, c.miss)
		}
		t.Logf("reader: %d reads, %d missing", c.ok, c.miss)
	}
}
