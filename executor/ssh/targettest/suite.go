// Package targettest is the shared test suite every modules.Target must
// pass: commands (exit codes, output, environment, timeouts, cancellation,
// isolation between commands, sudo) and files (atomic writes, modes,
// sha256, missing files). It is for tests only.
package targettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
)

// Host is the target under test plus a way to look at the host behind the
// transport's back (as root), for assertions.
type Host struct {
	Target modules.Target
	Exec   func(ctx context.Context, cmd string) (string, error)
	// Dir is a directory the target's user may write and Exec can read.
	Dir string
	// Sudo: the user may run `sudo -n` without a password.
	Sudo bool
}

// Run runs the suite.
func Run(t *testing.T, h Host) {
	t.Run("commands", func(t *testing.T) { commands(t, h) })
	t.Run("files", func(t *testing.T) { files(t, h) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func run(t *testing.T, h Host, cmd modules.Command) modules.Result {
	t.Helper()
	r, err := h.Target.Run(ctx(t), cmd)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd.Cmd, err)
	}
	return r
}

func commands(t *testing.T, h Host) {
	cases := []struct {
		name           string
		cmd            modules.Command
		code           int
		stdout, stderr string
	}{
		{"ok", modules.Command{Cmd: "echo hello"}, 0, "hello\n", ""},
		{"exitCode", modules.Command{Cmd: "echo out; echo err >&2; exit 7"}, 7, "out\n", "err\n"},
		{"noTrailingNewline", modules.Command{Cmd: "printf abc; printf def >&2"}, 0, "abc", "def"},
		{"emptyLines", modules.Command{Cmd: "printf '\\n\\n'"}, 0, "\n\n", ""},
		{"syntaxError", modules.Command{Cmd: "if then fi ("}, 2, "", "*"},
		{"notFound", modules.Command{Cmd: "no-such-command-xyz"}, 127, "", "*"},
		{"quotes", modules.Command{Cmd: `echo "it's" '"q"' \$HOME`}, 0, "it's \"q\" $HOME\n", ""},
		{"env", modules.Command{Cmd: `printf '%s|%s' "$A" "$B_2"`, Env: map[string]string{"A": "x y'z", "B_2": "$(id)"}}, 0, "x y'z|$(id)", ""},
		{"stdinIsEmpty", modules.Command{Cmd: "cat; echo done"}, 0, "done\n", ""},
		{"stdin", modules.Command{Cmd: "tr a-z A-Z; exit 4", Stdin: strings.NewReader("piped\n")}, 4, "PIPED\n", ""},
		{"stdinEnv", modules.Command{Cmd: `cat >/dev/null; echo "$V"`, Env: map[string]string{"V": "v"}, Stdin: strings.NewReader("x")}, 0, "v\n", ""},
		{"exitInSubshell", modules.Command{Cmd: "exit 0; echo never"}, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, h, c.cmd)
			if r.ExitCode != c.code || string(r.Stdout) != c.stdout || (c.stderr != "*" && string(r.Stderr) != c.stderr) || (c.stderr == "*" && len(r.Stderr) == 0) {
				t.Fatalf("got exit %d stdout %q stderr %q, want %d %q %q", r.ExitCode, r.Stdout, r.Stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
	t.Run("noLeakBetweenCommands", func(t *testing.T) {
		first := run(t, h, modules.Command{Cmd: "pwd"})
		run(t, h, modules.Command{Cmd: "cd /; export LEAK=1; LEAK2=2; umask 077; set -e; alias ll=ls; trap 'echo trap' EXIT"})
		r := run(t, h, modules.Command{Cmd: `pwd; echo "[$LEAK$LEAK2]"; umask; false; echo after-false`})
		lines := strings.Split(string(r.Stdout), "\n")
		if lines[0] != strings.TrimSpace(string(first.Stdout)) || lines[1] != "[]" || lines[2] == "0077" || lines[3] != "after-false" {
			t.Fatalf("state leaked between commands: %q", r.Stdout)
		}
	})
	t.Run("streamedAndCapped", func(t *testing.T) {
		var out bytes.Buffer
		n := modules.MaxOutput * 3
		r := run(t, h, modules.Command{Cmd: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo e >&2", n), Stdout: &out})
		if out.Len() != n || len(r.Stdout) != modules.MaxOutput || !r.Truncated || string(r.Stderr) != "e\n" {
			t.Fatalf("streamed %d, kept %d, truncated %v, stderr %q", out.Len(), len(r.Stdout), r.Truncated, r.Stderr)
		}
		if r := run(t, h, modules.Command{Cmd: "echo next"}); string(r.Stdout) != "next\n" {
			t.Fatalf("after a large output: %q", r.Stdout)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		marker := h.Dir + "/timeout-marker"
		_, err := h.Target.Run(ctx(t), modules.Command{Cmd: "trap '' HUP TERM PIPE; sleep 1.5 && touch " + marker + " & sleep 30", Timeout: 300 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("want a timeout error, got %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("timeout took %v", d)
		}
		if r := run(t, h, modules.Command{Cmd: "echo alive"}); string(r.Stdout) != "alive\n" {
			t.Fatalf("after a timeout: %q", r.Stdout)
		}
		time.Sleep(1700 * time.Millisecond)
		if out, _ := h.Exec(ctx(t), "test -e "+marker+" && echo still-running"); strings.Contains(out, "still-running") {
			t.Fatal("the timed-out command's children kept running")
		}
	})
	t.Run("timeoutWithStdin", func(t *testing.T) {
		marker := h.Dir + "/timeout-stdin-marker"
		_, err := h.Target.Run(ctx(t), modules.Command{Cmd: "trap '' HUP TERM PIPE; cat >/dev/null; sleep 1.5 && touch " + marker + " & sleep 30",
			Stdin: strings.NewReader("x"), Timeout: 300 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("want a timeout error, got %v", err)
		}
		time.Sleep(1700 * time.Millisecond)
		if out, _ := h.Exec(ctx(t), "test -e "+marker+" && echo still-running"); strings.Contains(out, "still-running") {
			t.Fatal("the timed-out command's children kept running")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		c, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := h.Target.Run(c, modules.Command{Cmd: "sleep 30"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("cancel took %v", d)
		}
		if r := run(t, h, modules.Command{Cmd: "echo alive"}); string(r.Stdout) != "alive\n" {
			t.Fatalf("after cancel: %q", r.Stdout)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := modules.Command{Cmd: fmt.Sprintf("echo %d", i)}
				if i%4 == 0 {
					cmd.Stdin = strings.NewReader("")
				}
				r, err := h.Target.Run(ctx(t), cmd)
				if err == nil && string(r.Stdout) != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("command %d got %q", i, r.Stdout)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("probe", func(t *testing.T) {
		r, err := h.Target.Probe(ctx(t), modules.Command{Cmd: "test -d /"})
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("%v %v", r, err)
		}
	})
	if h.Sudo {
		t.Run("sudo", func(t *testing.T) {
			r := run(t, h, modules.Command{Cmd: `id -u; echo "$E"; pwd`, Sudo: true, Env: map[string]string{"E": "e v"}})
			if !strings.HasPrefix(string(r.Stdout), "0\ne v\n") {
				t.Fatalf("sudo: %q %q", r.Stdout, r.Stderr)
			}
			if r := run(t, h, modules.Command{Cmd: "id -u"}); strings.TrimSpace(string(r.Stdout)) == "0" {
				t.Fatal("sudo leaked into the next command")
			}
			if r := run(t, h, modules.Command{Cmd: "id -u", Sudo: true, Stdin: strings.NewReader("")}); strings.TrimSpace(string(r.Stdout)) != "0" {
				t.Fatalf("sudo with stdin: %q %q", r.Stdout, r.Stderr)
			}
		})
	}
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func files(t *testing.T, h Host) {
	d := h.Dir
	t.Run("writeReadStat", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: many concurrent SFTP writes
		p := d + "/app.conf"
		if err := h.Target.WriteFile(ctx(t), p, bytes.NewReader(data), 0o640); err != nil {
			t.Fatal(err)
		}
		fi, err := h.Target.Stat(ctx(t), p)
		if err != nil || !fi.Exists || fi.IsDir || fi.Size != int64(len(data)) || fi.Mode.Perm() != 0o640 {
			t.Fatalf("stat: %+v %v", fi, err)
		}
		if s, err := h.Target.SHA256(ctx(t), p); err != nil || s != sum(data) {
			t.Fatalf("sha256 %q %v, want %s", s, err, sum(data))
		}
		if out, err := h.Exec(ctx(t), "sha256sum "+p+"; stat -c %a "+p); err != nil || !strings.HasPrefix(out, sum(data)) || !strings.HasSuffix(out, "640\n") {
			t.Fatalf("on the host: %q %v", out, err)
		}
		got, err := h.Target.ReadFile(ctx(t), p, 100)
		if err != nil || string(got) != string(data[:100]) {
			t.Fatalf("read: %q %v", got, err)
		}
	})
	t.Run("overwriteKeepsNoTemp", func(t *testing.T) {
		p := d + "/over"
		for i, mode := range []os.FileMode{0o600, 0o755, 0o644} {
			body := strings.Repeat(fmt.Sprint(i), i+1)
			if err := h.Target.WriteFile(ctx(t), p, strings.NewReader(body), mode); err != nil {
				t.Fatal(err)
			}
			got, err := h.Target.ReadFile(ctx(t), p, 1<<20)
			fi, _ := h.Target.Stat(ctx(t), p)
			if err != nil || string(got) != body || fi.Mode.Perm() != mode {
				t.Fatalf("round %d: %q %v %v", i, got, fi.Mode, err)
			}
		}
		if out, _ := h.Exec(ctx(t), "ls -A "+d+" | grep -c upgrader || true"); strings.TrimSpace(out) != "0" {
			t.Fatalf("temporary files left: %s", out)
		}
	})
	t.Run("emptyFile", func(t *testing.T) {
		p := d + "/empty"
		if err := h.Target.WriteFile(ctx(t), p, strings.NewReader(""), 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := h.Target.SHA256(ctx(t), p); err != nil || s != sum(nil) {
			t.Fatalf("%q %v", s, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		p := d + "/no/such"
		fi, err := h.Target.Stat(ctx(t), p)
		if err != nil || fi.Exists {
			t.Fatalf("stat missing: %+v %v", fi, err)
		}
		if s, err := h.Target.SHA256(ctx(t), p); err != nil || s != "" {
			t.Fatalf("sha256 missing: %q %v", s, err)
		}
		if _, err := h.Target.ReadFile(ctx(t), p, 10); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read missing: want ErrNotExist, got %v", err)
		}
		err = h.Target.WriteFile(ctx(t), p, strings.NewReader("x"), 0o644)
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("write into a missing directory: %v", err)
		}
	})
	t.Run("dirAndLink", func(t *testing.T) {
		if _, err := h.Exec(ctx(t), fmt.Sprintf("mkdir -p %[1]s/sub && ln -sfn sub %[1]s/link", d)); err != nil {
			t.Fatal(err)
		}
		fi, err := h.Target.Stat(ctx(t), d+"/sub")
		if err != nil || !fi.IsDir {
			t.Fatalf("dir: %+v %v", fi, err)
		}
		fi, err = h.Target.Stat(ctx(t), d+"/link")
		if err != nil || !fi.IsLink || fi.LinkTarget != "sub" {
			t.Fatalf("link: %+v %v", fi, err)
		}
		if _, err := h.Target.SHA256(ctx(t), d+"/sub"); err == nil {
			t.Fatal("sha256 of a directory should fail")
		}
	})
	t.Run("neverReadableByOthers", func(t *testing.T) {
		// While the bytes flow (the reader is held mid-stream), no file of
		// the write, here or staged in /tmp, may be readable by another user.
		p := d + "/private/secret.key"
		if _, err := h.Exec(ctx(t), fmt.Sprintf("mkdir -p %[1]s/private && chmod 755 %[1]s/private && chown --reference=%[1]s %[1]s/private", d)); err != nil {
			t.Fatal(err)
		}
		readable := func() string {
			out, _ := h.Exec(ctx(t), fmt.Sprintf("setpriv --reuid=nobody --regid=nogroup --clear-groups find %s/private /tmp -type f -readable 2>/dev/null | grep -v '^/tmp/' ; setpriv --reuid=nobody --regid=nogroup --clear-groups find /tmp -name '*upgrader*' -type f -readable 2>/dev/null; true", d))
			return strings.TrimSpace(out)
		}
		pr, pw := io.Pipe()
		held, release := make(chan struct{}), make(chan struct{})
		go func() {
			pw.Write(bytes.Repeat([]byte("s"), 1<<20))
			close(held)
			<-release
			pw.Write(bytes.Repeat([]byte("s"), 1<<20))
			pw.Close()
		}()
		errc := make(chan error, 1)
		go func() { errc <- h.Target.WriteFile(ctx(t), p, pr, 0o600) }()
		<-held
		time.Sleep(100 * time.Millisecond) // the first MiB reaches the host
		during := readable()
		close(release)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if during != "" {
			t.Fatalf("readable by another user during the write: %s", during)
		}
		if out, err := h.Exec(ctx(t), "stat -c '%a %s' "+p+"; ls -A "+d+"/private"); err != nil || out != "600 2097152\nsecret.key\n" {
			t.Fatalf("after the write: %q %v", out, err)
		}
	})
	t.Run("cancelledWrite", func(t *testing.T) {
		c, cancel := context.WithCancel(context.Background())
		p := d + "/cancelled"
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 1<<20))
			cancel()
			pw.Write(make([]byte, 1<<20))
			pw.Close()
		}()
		if err := h.Target.WriteFile(c, p, pr, 0o644); err == nil {
			t.Fatal("a cancelled write succeeded")
		}
		if out, _ := h.Exec(ctx(t), "ls -A "+d+" | grep cancelled || true"); strings.TrimSpace(out) != "" {
			t.Fatalf("a cancelled write left %q", out)
		}
	})
}
