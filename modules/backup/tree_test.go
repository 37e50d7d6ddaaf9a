package backup

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// execFunc runs a shell command as root where the tree lives (this machine
// or inside a test host) and returns its output.
type execFunc func(ctx context.Context, cmd string) (string, error)

func localExec(ctx context.Context, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%q: %v: %s", cmd, err, out)
	}
	return string(out), nil
}

// makeTree builds, under root, a tree with the things a backup must keep:
// odd names (spaces, a newline, unicode, leading dashes), symlinks (relative,
// dangling, to a directory), a hard link, modes (0600, 0755, setuid,
// sticky), other owners, an empty directory, a binary file, and files the
// excludes leave out (*.tmp, app/cache).
const makeTree = `set -e
D=%s
mkdir -p "$D/app/empty dir" "$D/app/sub/deeper" "$D/app/cache" "$D/etc" "$D/app/sticky"
printf 'hello\n' > "$D/app/plain.txt"
printf 'spaces' > "$D/app/with spaces.txt"
printf 'nl' > "$D/app/new
line.txt"
printf 'uni' > "$D/app/ünïcødé-日本.txt"
printf 'dash' > "$D/app/-leading-dash"
printf 'dd' > "$D/app/--double"
printf "quote'\"" > "$D/app/it's \"quoted\""
ln -s plain.txt "$D/app/link-rel"
ln -s /nonexistent/target "$D/app/link-dangling"
ln -s sub "$D/app/link-dir"
ln "$D/app/plain.txt" "$D/app/hardlink"
printf 'secret' > "$D/app/secret.key"; chmod 0600 "$D/app/secret.key"
printf '#!/bin/sh\n' > "$D/app/run.sh"; chmod 0755 "$D/app/run.sh"
printf 'suid' > "$D/app/suid"; chmod 4755 "$D/app/suid"
chmod 1777 "$D/app/sticky"
chmod 0750 "$D/app/sub"
printf 'owned' > "$D/app/sub/owned"; chown 1234:2345 "$D/app/sub/owned"
chown 33:33 "$D/app/sub/deeper"
head -c 300000 /dev/urandom > "$D/app/sub/blob.bin"
printf 'tmp' > "$D/app/log.tmp"
printf 'cached' > "$D/app/cache/page"
printf 'conf' > "$D/etc/app.conf"; chmod 0640 "$D/etc/app.conf"; chown 0:33 "$D/etc/app.conf"
touch -d '2020-01-02 03:04:05' "$D/app/plain.txt" "$D/etc/app.conf"
`

// changeTree changes the tree in every way a restore must undo, and writes
// excluded files a restore must keep.
const changeTree = `set -e
D=%s
printf 'changed\n' > "$D/app/plain.txt"
rm "$D/app/with spaces.txt"
printf 'new' > "$D/app/added"
mkdir "$D/app/added dir"; printf x > "$D/app/added dir/f"
chmod 0777 "$D/app/secret.key"
chown 0:0 "$D/app/sub/owned"
rm "$D/app/link-rel"; ln -s /etc/passwd "$D/app/link-rel"
rmdir "$D/app/empty dir"
rm -r "$D/app/sub/deeper"; printf 'was a dir' > "$D/app/sub/deeper"
rm "$D/app/new
line.txt"
printf 'tmp2' > "$D/app/log.tmp"
printf 'new cache' > "$D/app/cache/page2"
rm -r "$D/etc"
`

// snapshot lists every entry under root: type, mode, owner, size, link
// target, mtime (files) and sha256 (files), by path.
func snapshot(ctx context.Context, t *testing.T, run execFunc, root string) map[string]string {
	t.Helper()
	list, err := run(ctx, fmt.Sprintf(`cd %s && find . -mindepth 1 -printf '%%p\0%%y %%m %%U:%%G %%s %%l\0' && printf '\0' && find . -type f -exec sha256sum -z {} +`, shq(root)))
	if err != nil {
		t.Fatal(err)
	}
	meta, sums, _ := strings.Cut(list, "\x00\x00")
	if strings.HasSuffix(meta, "\x00") {
		meta = meta[:len(meta)-1]
	}
	out := map[string]string{}
	f := strings.Split(meta, "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		out[f[i]] = f[i+1]
	}
	for _, s := range strings.Split(strings.TrimSuffix(sums, "\x00"), "\x00") {
		if s == "" {
			continue
		}
		sum, name, _ := strings.Cut(s, "  ")
		out[name] += " sha256=" + sum
	}
	mt, err := run(ctx, fmt.Sprintf(`cd %s && find . -type f -printf '%%p\0%%Ts\0'`, shq(root)))
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Split(strings.TrimSuffix(mt, "\x00"), "\x00")
	for i := 0; i+1 < len(m); i += 2 {
		out[m[i]] += " mtime=" + m[i+1]
	}
	return out
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// excluded reports whether a snapshot path is one the test's excludes match.
func excluded(p string) bool {
	return strings.HasSuffix(p, ".tmp") || p == "./app/cache" || strings.HasPrefix(p, "./app/cache/")
}

// compareTrees fails the test with every difference outside the excludes.
func compareTrees(t *testing.T, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if excluded(p) {
			continue
		}
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %q (want %s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%q: got %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok && !excluded(p) {
			diffs = append(diffs, fmt.Sprintf("extra %q (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("trees differ:\n%s", strings.Join(diffs, "\n"))
	}
}

// checkSnapshotSane guards the comparison itself: the snapshot must see the
// odd names and the change must have changed them.
func checkSnapshotSane(t *testing.T, before, changed map[string]string) {
	t.Helper()
	for _, p := range []string{"./app/new\nline.txt", "./app/-leading-dash", "./app/ünïcødé-日本.txt", "./app/link-dangling", "./app/empty dir", "./app/sub/owned"} {
		if _, ok := before[p]; !ok {
			t.Fatalf("snapshot lacks %q: %v", p, before)
		}
	}
	if !strings.Contains(before["./app/sub/owned"], "1234:2345") || !strings.Contains(before["./app/suid"], " 4755 ") || !strings.Contains(before["./app/link-dangling"], "/nonexistent/target") {
		t.Fatalf("snapshot lacks owners, modes or link targets: %v", before)
	}
	n := 0
	for p, v := range before {
		if changed[p] != v {
			n++
		}
	}
	if n < 8 {
		t.Fatalf("the change touched only %d entries", n)
	}
}
