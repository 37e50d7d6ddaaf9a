package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/executor/ssh/targettest"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func pool(t *testing.T, opts ssh.Options) *ssh.Pool {
	p := ssh.NewPool(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestTarget_suite(t *testing.T) {
	bed := testbed.New(t, "suite")
	h := bed.Host("suite")
	tgt, err := bed.Target("suite")
	if err != nil {
		t.Fatal(err)
	}
	targettest.Run(t, targettest.Host{Target: tgt, Exec: h.Exec, Dir: "/opt", Sudo: true})
}

// In sudo mode every command and write runs as root.
func TestTarget_sudoMode(t *testing.T) {
	bed := testbed.New(t, "s")
	h := bed.Host("s")
	cfg := h.SSHConfig()
	cfg.Sudo = true
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "s", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "id -u"}); err != nil || string(r.Stdout) != "0\n" {
		t.Fatalf("%q %v", r.Stdout, err)
	}
	// /etc is root's: only a sudo write can replace a file there.
	if _, err := h.Exec(ctx(t), "mkdir -p /etc/app/root && chown root:root /etc/app/root && chmod 755 /etc/app/root && echo old > /etc/app/root/f && chown 123:45 /etc/app/root/f"); err != nil {
		t.Fatal(err)
	}
	if err := tgt.WriteFile(ctx(t), "/etc/app/root/f", strings.NewReader("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Exec(ctx(t), "cat /etc/app/root/f; stat -c '%a %u %g' /etc/app/root/f; ls -A /etc/app/root; ls -A /tmp | wc -l"); err != nil || out != "new\n600 123 45\nf\n0\n" {
		t.Fatalf("sudo write: %q %v", out, err)
	}
	if _, err := h.Exec(ctx(t), "chmod 700 /etc/app/root"); err != nil {
		t.Fatal(err)
	}
	if data, err := tgt.ReadFile(ctx(t), "/etc/app/root/f", 100); err != nil || string(data) != "new\n" {
		t.Fatalf("sudo read: %q %v", data, err)
	}
	// Behind a directory deploy cannot search, Stat and SHA256 go through sudo.
	fi, err := tgt.Stat(ctx(t), "/etc/app/root/f")
	if err != nil || !fi.Exists || fi.Mode != 0o600 || fi.Size != 4 || fi.UID != 123 || fi.GID != 45 {
		t.Fatalf("sudo stat: %+v %v", fi, err)
	}
	if fi, err := tgt.Stat(ctx(t), "/etc/app/root/none"); err != nil || fi.Exists {
		t.Fatalf("sudo stat missing: %+v %v", fi, err)
	}
	if s, err := tgt.SHA256(ctx(t), "/etc/app/root/f"); err != nil || len(s) != 64 {
		t.Fatalf("sudo sha256: %q %v", s, err)
	}
}

// Every fault gives one error that names the host, and no panic.
func wantErr(t *testing.T, err error, host string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, fmt.Sprintf("host %q: ", host)) {
		t.Errorf("error does not start by naming the host: %s", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error lacks %q: %s", p, msg)
		}
	}
	t.Log(msg)
}

func TestFaults_connect(t *testing.T) {
	bed := testbed.New(t, "web", "other")
	h := bed.Host("web")
	dir := t.TempDir()

	t.Run("wrongKey", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.PrivateKeyFiles = []string{keygen(t, dir, "wrong", "ed25519", "")}
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", "authentication failed", "deploy")
	})
	t.Run("missingKeyFile", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.PrivateKeyFiles = []string{dir + "/nope"}
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", dir+"/nope")
	})
	t.Run("unknownHostKey", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.KnownHostsFile = writeFile(t, dir, "kh-other", line(t, bed.Host("other")))
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", "unknown host key", "SHA256:", cfg.KnownHostsFile, "accept_new_host_keys")
	})
	t.Run("missingKnownHosts", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.KnownHostsFile = dir + "/no-known-hosts"
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", "does not exist", "accept_new_host_keys")
	})
	t.Run("acceptNew", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.KnownHostsFile = dir + "/sub/accept"
		cfg.AcceptNewHostKeys = true
		if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(cfg.KnownHostsFile)
		if want := strings.TrimSpace(line(t, h)); strings.TrimSpace(string(data)) != want {
			t.Fatalf("recorded %q, want %q", data, want)
		}
		cfg.AcceptNewHostKeys = false // now known: strict checking passes
		if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
			t.Fatal(err)
		}
	})
	// Accepted keys are recorded hashed with HashKnownHosts, or when the file
	// already holds hashed names; OpenSSH's own ssh-keygen -F finds them.
	t.Run("acceptNewHashed", func(t *testing.T) {
		for name, c := range map[string]struct {
			flag bool
			old  string
		}{"HashKnownHosts": {true, ""}, "hashed file": {false, "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}} {
			cfg := h.SSHConfig()
			cfg.KnownHostsFile = writeFile(t, dir, "hashed-"+strings.ReplaceAll(name, " ", "-"), c.old)
			cfg.AcceptNewHostKeys, cfg.HashKnownHosts = true, c.flag
			if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(cfg.KnownHostsFile)
			if strings.Contains(string(data), h.Address) || !strings.HasPrefix(strings.TrimPrefix(string(data), c.old+"\n"), "|1|") {
				t.Fatalf("%s: not hashed: %q", name, data)
			}
			if out, err := exec.Command("ssh-keygen", "-F", h.Address, "-f", cfg.KnownHostsFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "found: line") {
				t.Fatalf("%s: ssh-keygen -F: %v %s", name, err, out)
			}
			cfg.AcceptNewHostKeys = false // now known: strict checking passes
			if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("hostDown", func(t *testing.T) {
		o := bed.Host("other")
		if err := o.StopSSH(ctx(t)); err != nil {
			t.Fatal(err)
		}
		defer o.StartSSH(ctx(t))
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "other", o.SSHConfig())
		wantErr(t, err, "other", "connect", o.Address, "refused")
	})
	t.Run("portClosed", func(t *testing.T) {
		cfg := h.SSHConfig()
		cfg.Port = 2222
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", h.Address+":2222", "refused")
	})
	t.Run("noAnswer", func(t *testing.T) {
		o := bed.Host("other")
		if err := o.CutLink(ctx(t)); err != nil {
			t.Fatal(err)
		}
		defer o.RestoreLink(ctx(t))
		cfg := o.SSHConfig()
		cfg.Timeout = 500 * time.Millisecond
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "other", cfg)
		wantErr(t, err, "other", "no answer within")
	})
	t.Run("encryptedKey", func(t *testing.T) {
		key := keygen(t, dir, "enc", "ecdsa", "s3cret")
		authorize(t, h, key)
		cfg := h.SSHConfig()
		cfg.PrivateKeyFiles = []string{key}
		t.Setenv(ssh.PassphraseEnv, "")
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", "encrypted", ssh.PassphraseEnv)
		asked := ""
		if _, err := pool(t, ssh.Options{Passphrase: func(f string) ([]byte, error) { asked = f; return []byte("s3cret"), nil }}).Target(ctx(t), "web", cfg); err != nil || asked != key {
			t.Fatalf("prompt: %v (asked for %q)", err, asked)
		}
		t.Setenv(ssh.PassphraseEnv, "s3cret")
		if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rsaKeyAndAgent", func(t *testing.T) {
		key := keygen(t, dir, "rsa", "rsa", "")
		authorize(t, h, key)
		sock := filepath.Join(dir, "agent.sock")
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agent.Start(); err != nil {
			t.Skip("no ssh-agent:", err)
		}
		defer func() { agent.Process.Kill(); agent.Wait() }()
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		add := exec.Command("ssh-add", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		cfg := h.SSHConfig()
		cfg.PrivateKeyFiles = nil
		cfg.Agent = true
		if _, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFaults_hostKeys(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	dir := t.TempDir()
	connect := func(kh string) error {
		cfg := h.SSHConfig()
		cfg.KnownHostsFile = kh
		// Right after a restart under a loaded CI machine a handshake took
		// over the bed's 5s; these subtests judge keys, not speed.
		cfg.Timeout = 30 * time.Second
		_, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		return err
	}
	t.Run("hashed", func(t *testing.T) {
		kh := writeFile(t, dir, "hashed", "# comment\n"+line(t, h))
		if out, err := exec.Command("ssh-keygen", "-H", "-f", kh).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if data, _ := os.ReadFile(kh); strings.Contains(string(data), h.Address) {
			t.Fatal("not hashed")
		}
		if err := connect(kh); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		pub, _ := os.ReadFile(h.HostKeyFile + ".pub")
		kh := writeFile(t, dir, "revoked", line(t, h)+"@revoked * "+string(pub))
		wantErr(t, connect(kh), "web", "@revoked", "SHA256:", kh+":2")
	})
	t.Run("severalKeyTypes", func(t *testing.T) {
		// The host also has an RSA key; known_hosts knows only that one, so
		// RSA must be negotiated (not refused as a "changed" ed25519 key).
		rsa := keygen(t, h.Dir, "host_rsa", "rsa", "") // where the host's sshd can read it
		if err := h.RestartSSH(ctx(t), "HostKey "+rsa); err != nil {
			t.Fatal(err)
		}
		defer h.RestartSSH(ctx(t), "")
		pub, _ := os.ReadFile(rsa + ".pub")
		kh := writeFile(t, dir, "rsa-only", h.Address+" "+string(pub))
		if err := connect(kh); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("certAuthority", func(t *testing.T) {
		ca := keygen(t, dir, "ca", "ed25519", "")
		if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "web", "-h", "-n", h.Address, h.HostKeyFile+".pub").CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if err := h.RestartSSH(ctx(t), "HostCertificate "+h.HostKeyFile+"-cert.pub"); err != nil {
			t.Fatal(err)
		}
		defer h.RestartSSH(ctx(t), "")
		caPub, _ := os.ReadFile(ca + ".pub")
		if err := connect(writeFile(t, dir, "ca", "@cert-authority 198.51.100.* "+string(caPub))); err != nil {
			t.Fatal(err)
		}
		other := keygen(t, dir, "ca2", "ed25519", "")
		otherPub, _ := os.ReadFile(other + ".pub")
		wantErr(t, connect(writeFile(t, dir, "ca2", "@cert-authority 198.51.100.* "+string(otherPub))), "web", "SHA256:")
	})
	t.Run("changed", func(t *testing.T) {
		kh := writeFile(t, dir, "changed", "# first line\n"+line(t, h))
		if err := h.RegenerateHostKey(ctx(t)); err != nil {
			t.Fatal(err)
		}
		err := connect(kh)
		wantErr(t, err, "web", "HOST KEY CHANGED", "SHA256:", kh+":2", "remove that line")
		cfg := h.SSHConfig()
		cfg.KnownHostsFile = kh
		cfg.AcceptNewHostKeys = true // never overrides a changed key
		_, err = pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
		wantErr(t, err, "web", "HOST KEY CHANGED")
	})
}

func TestFaults_files(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tgt, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("permissionDenied", func(t *testing.T) {
		err := tgt.WriteFile(ctx(t), "/etc/upgrader-test.conf", strings.NewReader("x"), 0o644)
		wantErr(t, err, "web", "/etc/upgrader-test.conf", "permission denied")
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("not os.ErrPermission: %v", err)
		}
	})
	t.Run("diskFull", func(t *testing.T) {
		if err := h.MountTmpfs(ctx(t), "/opt/small", "256k"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Exec(ctx(t), "echo old > /opt/small/f && chown deploy /opt/small/f"); err != nil {
			t.Fatal(err)
		}
		err := tgt.WriteFile(ctx(t), "/opt/small/f", bytes.NewReader(make([]byte, 1<<20)), 0o644)
		wantErr(t, err, "web", "/opt/small/f", "no space left")
		if out, err := h.Exec(ctx(t), "cat /opt/small/f; ls -A /opt/small"); err != nil || out != "old\nf\n" {
			t.Fatalf("after a failed write: %q %v", out, err)
		}
	})
	t.Run("droppedDuringTransfer", func(t *testing.T) {
		if _, err := h.Exec(ctx(t), "echo old > /opt/dropped"); err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 4<<20))
			h.StopSSH(context.Background()) // kills sshd and every session mid-transfer
			pw.Write(make([]byte, 4<<20))
			pw.Close()
		}()
		err := tgt.WriteFile(ctx(t), "/opt/dropped", pr, 0o644)
		wantErr(t, err, "web", "/opt/dropped")
		if out, err := h.Exec(ctx(t), "cat /opt/dropped"); err != nil || out != "old\n" {
			t.Fatalf("destination changed by a cut transfer: %q %v", out, err)
		}
		if err := h.StartSSH(ctx(t)); err != nil {
			t.Fatal(err)
		}
		// The next call reconnects.
		if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "echo back"}); err != nil || string(r.Stdout) != "back\n" {
			t.Fatalf("after reconnect: %q %v", r.Stdout, err)
		}
		// ... and removes the partial file the cut left in its private directory.
		if out, err := h.Exec(ctx(t), "ls -A /opt"); err != nil || strings.Contains(out, ".dropped.upgrader-") {
			t.Fatalf("left after the reconnect: %q %v", out, err)
		}
	})
}

// A silently dead link is detected by keepalives, not hung on.
func TestFaults_deadLink(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tgt, err := pool(t, ssh.Options{KeepaliveInterval: 200 * time.Millisecond, KeepaliveMax: 3}).Target(ctx(t), "web", h.SSHConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Run(ctx(t), modules.Command{Cmd: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := h.CutLink(ctx(t)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tgt.Run(ctx(t), modules.Command{Cmd: "sleep 60"})
	wantErr(t, err, "web", "keepalive")
	// Detection (~0.6s here) plus the one reconnect attempt a command that
	// never started gets (bounded by the 5s connect timeout).
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("dead link found after %v", d)
	}
	if err := h.RestoreLink(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "echo back"}); err != nil || string(r.Stdout) != "back\n" {
		t.Fatalf("after the link came back: %q %v", r.Stdout, err)
	}
}

// The default keepalive settings detect a dead link within 30 s.
func TestFaults_deadLinkDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~27s")
	}
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "web", h.SSHConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.CutLink(ctx(t)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tgt.Run(ctx(t), modules.Command{Cmd: "true"})
	wantErr(t, err, "web", "keepalive")
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("dead link found after %v", d)
	}
}

func TestBastion(t *testing.T) {
	bed := testbed.New(t, "jump", "inner")
	j, in := bed.Host("jump"), bed.Host("inner")
	cfg := in.SSHConfig()
	cfg.Bastion = "deploy@" + j.Address + ":22"
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "inner", cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tgt.Run(ctx(t), modules.Command{Cmd: "echo $SSH_CONNECTION"})
	// The inner host sees the connection coming from the jump host.
	if err != nil || !strings.HasPrefix(string(r.Stdout), j.Address+" ") {
		t.Fatalf("%q %v", r.Stdout, err)
	}
	if err := tgt.WriteFile(ctx(t), "/opt/through", strings.NewReader("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Bastion = "deploy@" + j.Address + ":2222"
	_, err = pool(t, ssh.Options{}).Target(ctx(t), "inner", cfg)
	wantErr(t, err, "inner", "bastion", "refused")
}

// Many sessions at once never exceed sshd's MaxSessions (10).
func TestTarget_maxSessions(t *testing.T) {
	bed := testbed.New(t, "web")
	tgt, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 30)
	for range 30 {
		go func() {
			_, err := tgt.Run(ctx(t), modules.Command{Cmd: "cat >/dev/null; sleep 0.2", Stdin: strings.NewReader("x")})
			errs <- err
		}()
	}
	for range 30 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// A server allowing fewer sessions than we would open: idle shells give
	// theirs up and the others wait, nothing fails.
	if err := bed.Host("web").RestartSSH(ctx(t), "MaxSessions 2"); err != nil {
		t.Fatal(err)
	}
	defer bed.Host("web").RestartSSH(ctx(t), "")
	low, err := pool(t, ssh.Options{}).Target(ctx(t), "web", bed.Host("web").SSHConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		go func() {
			cmd := modules.Command{Cmd: "sleep 0.1"}
			if i%3 == 0 {
				cmd = modules.Command{Cmd: "cat >/dev/null; sleep 0.1", Stdin: strings.NewReader("x")}
			}
			_, err := low.Run(ctx(t), cmd)
			errs <- err
		}()
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Errorf("MaxSessions 2: %v", err)
		}
	}
}

// Tunnels: Dial opens a connection from the host.
func TestTarget_dial(t *testing.T) {
	bed := testbed.New(t, "web")
	tgt, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := tgt.Dial(ctx(t), "tcp", bed.Host("web").Address+":22")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "SSH-2.0-" {
		t.Fatalf("%q %v", buf, err)
	}
	_, err = tgt.Dial(ctx(t), "tcp", "127.0.0.1:1")
	wantErr(t, err, "web", "127.0.0.1:1")
}

func line(t *testing.T, h *testbed.Host) string {
	l, err := h.HostKeyLine()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeFile(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keygen(t *testing.T, dir, name, typ, pass string) string {
	p := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", pass, "-f", p, "-C", name}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return p
}

func authorize(t *testing.T, h *testbed.Host, key string) {
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(h.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(pub)
}

// A long-lived shell that died between commands is replaced transparently.
func TestTarget_deadShellReplaced(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	tgt, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Run(ctx(t), modules.Command{Cmd: "true"}); err != nil {
		t.Fatal(err)
	}
	// Kill the idle shell (a /bin/sh owned by deploy) behind the transport's
	// back: only this host's. The test hosts share one pid namespace, so a
	// plain pkill would kill every test host's shells, in every test running.
	if _, err := h.Exec(ctx(t), `me=$(readlink /proc/self/ns/net); n=0; for p in $(pgrep -u deploy -x sh); do [ "$(readlink /proc/$p/ns/net)" = "$me" ] && kill -KILL "$p" && n=$((n+1)); done; [ $n -gt 0 ]`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "echo again"}); err != nil || string(r.Stdout) != "again\n" {
		t.Fatalf("%q %v", r.Stdout, err)
	}
}

// A connection dropped while idle (sshd restarted) is replaced by the next call.
func TestTarget_reconnectAfterRestart(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	cfg := h.SSHConfig()
	cfg.Timeout = 30 * time.Second // a handshake right after a restart, on a loaded machine
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "web", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := tgt.Run(ctx(t), modules.Command{Cmd: "true"}); err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.Stat(ctx(t), "/opt"); err != nil {
			t.Fatal(err)
		}
		if err := h.StopSSH(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := h.StartSSH(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "echo back"}); err != nil || string(r.Stdout) != "back\n" {
			t.Fatalf("round %d: %q %v", i, r.Stdout, err)
		}
		if fi, err := tgt.Stat(ctx(t), "/opt"); err != nil || !fi.IsDir {
			t.Fatalf("round %d: stat: %v", i, err)
		}
	}
}

// A command's environment and text never appear in a remote argv (ps,
// /proc/PID/cmdline): with and without sudo, with and without stdin. The
// hosts share this machine's pid namespace, so this process scans every
// process's command line while the commands run.
func TestTarget_noSecretInArgv(t *testing.T) {
	t.Parallel()
	bed := testbed.New(t, "argv")
	tgt, err := bed.Target("argv")
	if err != nil {
		t.Fatal(err)
	}
	canary := "CANARY-" + strings.Repeat("x", 8) + fmt.Sprint(time.Now().UnixNano())
	for _, c := range []struct {
		name  string
		sudo  bool
		stdin bool
	}{{"shell", false, false}, {"shell sudo", true, false}, {"session", false, true}, {"session sudo", true, true}} {
		// Long enough for several scans of every /proc/*/cmdline on a loaded machine.
		cmd := modules.Command{Cmd: "sleep 2; echo " + canary + "-in-text; echo \"$TOKEN\"", Env: map[string]string{"TOKEN": canary}, Sudo: c.sudo}
		if c.stdin {
			cmd.Cmd = "sleep 2; cat; echo \"$TOKEN\""
			cmd.Stdin = strings.NewReader("in\n")
		}
		type res struct {
			r   modules.Result
			err error
		}
		done := make(chan res, 1)
		go func() {
			r, err := tgt.Run(ctx(t), cmd)
			done <- res{r, err}
		}()
		scans := 0
	scan:
		for {
			select {
			case r := <-done:
				if r.err != nil || r.r.ExitCode != 0 || !strings.Contains(string(r.r.Stdout), canary+"\n") {
					t.Fatalf("%s: %q %q %v", c.name, r.r.Stdout, r.r.Stderr, r.err)
				}
				break scan
			default:
			}
			if pid := argvHolding(canary); pid != "" {
				t.Fatalf("%s: the secret is in the command line of process %s", c.name, pid)
			}
			scans++
			time.Sleep(time.Millisecond)
		}
		if scans < 3 {
			t.Fatalf("%s: only %d scans while the command ran", c.name, scans)
		}
	}
}

// argvHolding returns a process whose command line contains s ("" if none).
func argvHolding(s string) string {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(s)) {
			return e.Name() + " (" + strings.ReplaceAll(string(b), "\x00", " ") + ")"
		}
	}
	return ""
}

// watchArgv scans every process's command line for the secrets until the
// returned stop is called; stop returns a process that held one ("" if none).
func watchArgv(secrets ...string) (stop func() string) {
	done := make(chan struct{})
	leaked := make(chan string, 1)
	go func() {
		defer close(leaked)
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, s := range secrets {
				if p := argvHolding(s); p != "" {
					leaked <- p
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() string {
		close(done)
		return <-leaked
	}
}

// sudo_password: a real sudoers entry that asks for a password. Commands,
// stdin sessions, sudo writes and the kill of a timed-out command run as
// root; the password is never in a remote argv; a wrong one fails at
// connect with a clear message, quickly.
func TestTarget_sudoPassword(t *testing.T) {
	t.Parallel()
	bed := testbed.New(t, "pw")
	h := bed.Host("pw")
	pw, err := testbed.PasswordSudo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.SSHConfig()
	cfg.User, cfg.Sudo = testbed.SudoPasswordUser, true
	// Without the password sudo -n fails at once (no hang, no prompt).
	nopw, err := pool(t, ssh.Options{}).Target(ctx(t), "pw", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := nopw.Run(ctx(t), modules.Command{Cmd: "id -u"}); err != nil || r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "password is required") {
		t.Fatalf("sudo -n without a password: %q %q %v", r.Stdout, r.Stderr, err)
	}

	start := time.Now()
	bad := cfg
	bad.SudoPassword = "WRONG-" + pw
	_, err = pool(t, ssh.Options{}).Target(ctx(t), "pw", bad)
	wantErr(t, err, "pw", "sudo check", "sudo_password was not accepted", "incorrect password")
	if strings.Contains(err.Error(), bad.SudoPassword) || time.Since(start) > 15*time.Second {
		t.Fatalf("wrong password: %v after %v", err, time.Since(start))
	}

	cfg.SudoPassword = pw
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "pw", cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopWatch := watchArgv(pw)
	if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "sleep 0.5; id -u"}); err != nil || string(r.Stdout) != "0\n" || len(r.Stderr) != 0 {
		t.Fatalf("shell: %q %q %v", r.Stdout, r.Stderr, err)
	}
	if r, err := tgt.Run(ctx(t), modules.Command{Cmd: "id -u; cat", Stdin: strings.NewReader("data\n")}); err != nil || string(r.Stdout) != "0\ndata\n" {
		t.Fatalf("session: %q %q %v", r.Stdout, r.Stderr, err)
	}
	if err := tgt.WriteFile(ctx(t), "/etc/app/pw.conf", strings.NewReader("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Exec(ctx(t), "stat -c '%a %U' /etc/app/pw.conf"); err != nil || out != "640 root\n" {
		t.Fatalf("sudo write: %q %v", out, err)
	}
	// A timed-out sudo command is killed (as root, with the password).
	r, err := tgt.Run(ctx(t), modules.Command{Cmd: "sleep 31.25", Timeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("timeout: %+v %v", r, err)
	}
	if p := argvHolding("sleep\x0031.25"); p != "" {
		t.Fatalf("timed-out command still running: %s", p)
	}
	if p := stopWatch(); p != "" {
		t.Fatalf("the sudo password is in the command line of process %s", p)
	}
}

// tty = true: the command gets a pseudo-terminal (a program that checks
// [ -t 0 ] is satisfied), with and without sudo, also with a sudo password;
// the script and environment stay out of argv and no staged file is left.
func TestTarget_tty(t *testing.T) {
	t.Parallel()
	bed := testbed.New(t, "tty")
	h := bed.Host("tty")
	pw, err := testbed.PasswordSudo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := bed.Target("tty")
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.SSHConfig()
	cfg.User, cfg.SudoPassword = testbed.SudoPasswordUser, pw
	withPw, err := pool(t, ssh.Options{}).Target(ctx(t), "tty", cfg)
	if err != nil {
		t.Fatal(err)
	}
	canary := fmt.Sprintf("TTY-CANARY-%d", time.Now().UnixNano())
	check := `if [ -t 0 ] && [ -t 1 ]; then tty; else echo "no tty"; fi; id -u; echo "$TOKEN"; echo to-stderr >&2; sleep 0.3`
	for _, c := range []struct {
		name string
		tgt  modules.Target
		cmd  modules.Command
		want string
	}{
		{"no tty", plain, modules.Command{Cmd: check}, "no tty\n1"},
		{"tty", plain, modules.Command{Cmd: check, TTY: true}, "/dev/pts/"},
		{"tty sudo", plain, modules.Command{Cmd: check, TTY: true, Sudo: true}, "/dev/pts/"},
		{"tty sudo password", withPw, modules.Command{Cmd: check, TTY: true, Sudo: true}, "/dev/pts/"},
	} {
		c.cmd.Env = map[string]string{"TOKEN": canary}
		stop := watchArgv(canary, pw)
		r, err := c.tgt.Run(ctx(t), c.cmd)
		if p := stop(); p != "" {
			t.Fatalf("%s: a secret in the command line of %s", c.name, p)
		}
		out := string(r.Stdout)
		if err != nil || r.ExitCode != 0 || !strings.HasPrefix(out, c.want) || !strings.Contains(out, canary+"\n") {
			t.Fatalf("%s: %q %q %v", c.name, r.Stdout, r.Stderr, err)
		}
		if root := strings.Contains(out, "\n0\n"); root != c.cmd.Sudo {
			t.Errorf("%s: root = %v: %q", c.name, root, out)
		}
		if c.cmd.TTY && !strings.Contains(out, "to-stderr") {
			t.Errorf("%s: stderr is not on the terminal: %q", c.name, out)
		}
	}
	if out, err := h.Exec(ctx(t), "ls -A /tmp"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("left in /tmp: %q %v", out, err)
	}
	// A timed-out tty command is killed.
	if _, err := plain.Run(ctx(t), modules.Command{Cmd: "sleep 32.5", TTY: true, Sudo: true, Timeout: 500 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("timeout: %v", err)
	}
	if p := argvHolding("sleep\x0032.5"); p != "" {
		t.Fatalf("timed-out tty command still running: %s", p)
	}
}
