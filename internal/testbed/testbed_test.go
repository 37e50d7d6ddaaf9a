package testbed

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/lang"
)

func TestTestbed_hostsAreSeparate(t *testing.T) {
	b := New(t, "a", "b")
	ctx := context.Background()
	a, bh := b.Host("a"), b.Host("b")
	if _, err := a.Exec(ctx, "echo one > /etc/app/x && echo log > /var/log/app/l && touch /opt/o /home/deploy/h"); err != nil {
		t.Fatal(err)
	}
	if out, err := bh.Exec(ctx, "ls -A /etc/app /opt /var/log/app; test ! -e /home/deploy/h && echo clean"); err != nil || !strings.Contains(out, "clean") || strings.Contains(out, "x") {
		t.Fatalf("host b sees host a's files: %q %v", out, err)
	}
	if _, err := os.Stat("/etc/app/x"); err == nil {
		t.Fatal("host file leaked into the root namespace")
	}
	out, err := a.Exec(ctx, "ip -4 -o addr show dev eth0")
	if err != nil || !strings.Contains(out, a.Address+"/24") {
		t.Fatalf("address: %q %v", out, err)
	}
	if out, err := a.Exec(ctx, "ls -A /home/deploy; stat -c %U /home/deploy"); err != nil || !strings.Contains(out, ".bashrc") || !strings.Contains(out, "deploy") {
		t.Fatalf("deploy home: %q %v", out, err)
	}
}

// The client key, known_hosts and sshd work with OpenSSH's own client.
func TestTestbed_opensshLogin(t *testing.T) {
	b := New(t, "h")
	h := b.Host("h")
	ssh := func() (string, error) {
		out, err := exec.Command("ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+h.KnownHostsFile,
			"-o", "ConnectTimeout=3", "-i", h.KeyFile, "deploy@"+h.Address, "id -un; sudo -n id -u; hostname -I").CombinedOutput()
		return string(out), err
	}
	out, err := ssh()
	if err != nil || !strings.Contains(out, "deploy\n0\n") || !strings.Contains(out, h.Address) {
		t.Fatalf("ssh: %q %v", out, err)
	}
	ctx := context.Background()
	if err := h.StopSSH(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := ssh(); err == nil || !strings.Contains(out, "refused") {
		t.Fatalf("ssh to a stopped sshd: %q %v", out, err)
	}
	if err := h.StartSSH(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := ssh(); err != nil {
		t.Fatalf("ssh after restart: %q %v", out, err)
	}
}

func TestTestbed_closeRemovesEverything(t *testing.T) {
	Require(t)
	ctx := context.Background()
	b, err := Start(ctx, Options{Hosts: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Host("x")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/run/netns/" + h.NetNS, h.Dir, b.Dir, filepath.Join(Root, "mnt", h.NetNS), "/sys/class/net/" + h.NetNS + "c"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after Close", p)
		}
	}
}

// A slot whose owner died is reclaimed by the next Start.
func TestTestbed_staleSlotReclaimed(t *testing.T) {
	Require(t)
	ctx := context.Background()
	b, err := Start(ctx, Options{Hosts: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Host("x")
	// Pretend the owner died: point the slot at a pid that does not exist.
	slotFile := filepath.Join(Root, "slots", itoa(h.Slot)+".json")
	if err := os.WriteFile(slotFile, []byte(`{"pid":999999999,"start":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b2 := New(t, "y")
	_ = b2
	if _, err := os.Stat("/run/netns/" + h.NetNS); err == nil && b2.Host("y").NetNS != h.NetNS {
		t.Fatalf("stale namespace %s not removed", h.NetNS)
	}
	b.hosts = nil // its slot now belongs to b2 or is gone
	b.Close()
}

func TestTestbed_cutLink(t *testing.T) {
	b := New(t, "h")
	h := b.Host("h")
	ctx := context.Background()
	probe := func(timeout string) error {
		return exec.Command("ssh", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+h.KnownHostsFile, "-o", "ConnectTimeout="+timeout,
			"-i", h.KeyFile, "deploy@"+h.Address, "true").Run()
	}
	if err := h.CutLink(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := probe("1"); err == nil {
		t.Fatal("ssh worked over a cut link")
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatalf("a cut link should time out, not fail fast (%v)", time.Since(start))
	}
	if err := h.RestoreLink(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe("10"); err != nil {
		t.Fatalf("ssh after RestoreLink: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// BenchmarkStart_4hosts measures starting and closing a 4-host testbed.
func BenchmarkStart_4hosts(b *testing.B) {
	Require(b)
	ctx := context.Background()
	for b.Loop() {
		bed, err := Start(ctx, Options{Hosts: []string{"a", "b", "c", "d"}})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bed.Close()
		b.StartTimer()
	}
}

// WriteHostsHCL's file is a valid configuration whose hosts match the bed.
func TestTestbed_hostsHCLLoads(t *testing.T) {
	b := New(t, "primary", "standby")
	dir := t.TempDir()
	if err := b.WriteHostsHCL(filepath.Join(dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(dir, lang.Schemas{}, lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	for _, h := range b.Hosts() {
		got := cfg.Hosts[h.Name]
		if got == nil || got.Address != h.Address || got.Conn.User != "deploy" || got.Conn.PrivateKeyFile != h.KeyFile || got.Conn.KnownHostsFile != h.KnownHostsFile {
			t.Fatalf("host %s: %+v", h.Name, got)
		}
	}
}
