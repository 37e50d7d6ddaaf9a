package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/upgrader-dev/upgrader/modules"
)

// craftedEntry is one tar header of a hand-made archive.
type craftedEntry struct {
	name, link string
	typ        byte
	body       string
}

// craftTar builds an uncompressed tar stream from entries.
func craftTar(t *testing.T, entries []craftedEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1, 0), Format: tar.FormatGNU}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.body))
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeChar, tar.TypeBlock:
			h.Devmajor, h.Devminor = 8, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeCrafted stores a tar stream as backup RUN/NAME with a manifest that
// matches it (sha256, sizes): only the entries can be wrong.
func writeCrafted(t *testing.T, stateDir string, m Manifest, stream []byte) string {
	t.Helper()
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z)
	enc.Write(stream)
	enc.Close()
	dir := Dir(stateDir, m.Run, m.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, hostArchive), z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(z.Bytes())
	m.Format, m.ID, m.Kind, m.Archive = manifestFormat, m.Run+"/"+m.Name, KindHost, hostArchive
	m.SHA256, m.Bytes, m.ArchiveBytes, m.CreatedAt = hex.EncodeToString(sum[:]), int64(len(stream)), int64(z.Len()), time.Now().UTC()
	if err := writeManifest(dir, &m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerify_craftedArchives: archives whose sha256 and sizes match their
// manifest but whose entries leave the backed-up paths (what a host that
// was taken over would send) fail verify and restore, and restore writes
// nothing, not even inside the paths.
func TestVerify_craftedArchives(t *testing.T) {
	root := t.TempDir()
	app := root + "/app"   // the backed-up path
	rel := root + "/rel"   // where the link path app2 resolved to
	app2 := root + "/app2" // a link path
	out := root + "/outside"
	n := func(p string) string { return "." + p }
	good := []craftedEntry{
		{name: n(app) + "/", typ: tar.TypeDir},
		{name: n(app) + "/f", typ: tar.TypeReg, body: "restored"},
		{name: n(app2), link: "rel", typ: tar.TypeSymlink},
		{name: n(rel) + "/", typ: tar.TypeDir},
		{name: n(rel) + "/g", typ: tar.TypeReg, body: "through the link"},
	}
	with := func(extra ...craftedEntry) []craftedEntry {
		return append(append([]craftedEntry(nil), good...), extra...)
	}
	cases := []struct {
		name    string
		entries []craftedEntry
		want    string
	}{
		{"absolute", with(craftedEntry{name: out + "/abs", typ: tar.TypeReg, body: "x"}), "is not relative to /"},
		{"otherDirectory", with(craftedEntry{name: n(out) + "/x", typ: tar.TypeReg, body: "x"}), "outside the backed-up paths"},
		{"dotdot", with(craftedEntry{name: n(app) + "/../outside/x", typ: tar.TypeReg, body: "x"}), `contains ".."`},
		{"prefixSibling", with(craftedEntry{name: n(app) + "x/y", typ: tar.TypeReg, body: "x"}), "outside the backed-up paths"},
		{"hardLinkOutside", with(craftedEntry{name: n(app) + "/h", link: n(out) + "/secret", typ: tar.TypeLink}), "hard link target"},
		{"hardLinkAbsolute", with(craftedEntry{name: n(app) + "/h", link: "/etc/shadow", typ: tar.TypeLink}), "hard link target"},
		{"belowSymlink", with(
			craftedEntry{name: n(app) + "/evil", link: out, typ: tar.TypeSymlink},
			craftedEntry{name: n(app) + "/evil/x", typ: tar.TypeReg, body: "x"}), "below the symbolic link"},
		{"deviceNode", with(craftedEntry{name: n(app) + "/sda", typ: tar.TypeBlock}), "device node"},
		{"linkPathNotALink", []craftedEntry{
			{name: n(app) + "/", typ: tar.TypeDir},
			{name: n(app2) + "/", typ: tar.TypeDir},
			{name: n(app2) + "/x", typ: tar.TypeReg, body: "x"},
			{name: n(rel) + "/", typ: tar.TypeDir},
		}, "should be the symbolic link the backup recorded"},
	}
	man := Manifest{Run: "r1", Paths: []string{app, app2}, Links: []Link{{Path: app2, Target: rel, Symlink: true}}}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			m := man
			m.Name = "crafted"
			dir := writeCrafted(t, state, m, craftTar(t, c.entries))
			if _, _, err := VerifyDir(ctx, dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("verify: %v, want %q", err, c.want)
			}
			if os.Geteuid() != 0 {
				return
			}
			err := RestoreDir(ctx, dir, RestoreOptions{Target: newLocalTarget("web"), Host: "web"})
			if err == nil || !strings.Contains(err.Error(), "nothing was restored") {
				t.Errorf("restore: %v", err)
			}
			for _, p := range []string{app, app2, rel, out} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("restore of a refused archive created %s", p)
				}
			}
		})
	}
	// The same manifest with the good entries verifies and restores.
	t.Run("good", func(t *testing.T) {
		m := man
		m.Name = "good"
		dir := writeCrafted(t, t.TempDir(), m, craftTar(t, good))
		if _, _, err := VerifyDir(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() != 0 {
			t.Skip("restore needs root")
		}
		if err := RestoreDir(ctx, dir, RestoreOptions{Target: newLocalTarget("web"), Host: "web"}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(app2 + "/g"); string(b) != "through the link" {
			t.Errorf("%s/g = %q", app2, b)
		}
	})
	// A hand-edited manifest naming / is refused before the archive is read.
	t.Run("manifestRoot", func(t *testing.T) {
		m := man
		m.Name, m.Paths = "root", []string{"/"}
		dir := writeCrafted(t, t.TempDir(), m, craftTar(t, good))
		if _, _, err := VerifyDir(ctx, dir); err == nil || !strings.Contains(err.Error(), "not a clean absolute path") {
			t.Errorf("verify: %v", err)
		}
	})
}

// craftingTarget is a host whose tar sends a crafted stream: the backup
// itself must fail, leaving nothing that looks complete.
type craftingTarget struct {
	*localTarget
	stream []byte
}

func (c *craftingTarget) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	if cmd.Stdout != nil && strings.Contains(cmd.Cmd, "tar --null") {
		_, err := cmd.Stdout.Write(c.stream)
		return modules.Result{}, err
	}
	return c.localTarget.Run(ctx, cmd)
}

func TestBackup_craftedStreamRefused(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/app", 0o755); err != nil {
		t.Fatal(err)
	}
	ct := &craftingTarget{localTarget: newLocalTarget("web"), stream: craftTar(t, []craftedEntry{
		{name: "." + root + "/app/", typ: tar.TypeDir},
		{name: "./etc/cron.d/evil", typ: tar.TypeReg, body: "* * * * * root sh"},
	})}
	env, _ := localEnv(t, "r1")
	env.Targets["web"] = ct
	b := &Backup{}
	_, err := b.Apply(context.Background(), &modules.Request{Config: decode(t, b, fmt.Sprintf(`backup {
  host  = host.web
  paths = [%q]
}`, root+"/app")), Node: "backup.web", Env: env, Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "outside the backed-up paths") {
		t.Fatalf("backup of a crafted stream: %v", err)
	}
	if left, _ := os.ReadDir(Dir(env.Dir, "r1", "web")); len(left) != 0 {
		t.Errorf("a refused backup left %v", left)
	}
}

// TestRestoreScript_onlyMembers: tar is told exactly which members to
// extract, literally, whatever else the stream holds.
func TestRestoreScript_onlyMembers(t *testing.T) {
	s := restoreScript([]string{"/opt/app", "/opt/rel/v*"}, nil)
	if !strings.Contains(s, "tar -xpf - --numeric-owner --no-wildcards -C / -- './opt/app' './opt/rel/v*'\n") {
		t.Errorf("restore script:\n%s", s)
	}
}
