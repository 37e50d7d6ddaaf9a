// Package testbed starts real test hosts for upgrader's tests and scripts:
// each host is a network namespace joined to a shared bridge by a veth pair,
// with its own mount namespace (private /opt, /etc/app, /var/log/app,
// /home/deploy, /tmp; all but /tmp owned by deploy) running the machine's OpenSSH sshd on its own address
// in 198.51.100.0/24, reachable as the non-root user `deploy` with a
// generated key.
//
// Several processes may run testbeds at once: address slots are allocated
// under a flock and freed on Close; slots left by dead processes are
// removed by the next Start. It needs root; Require skips tests otherwise.
package testbed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Root holds the lock, slot files, host directories and mount namespaces.
const Root = "/run/upgrader-testbed"

const (
	bridge     = "ugtbbr0"
	controller = "198.51.100.254" // the root namespace's address on the bridge
	subnet     = "198.51.100."
	maxSlot    = 250
	deployUser = "deploy"
)

// Options for Start.
type Options struct {
	// Hosts names the hosts; default one host "host1".
	Hosts []string
	// Persistent beds outlive the process that started them (cmd/testbed up);
	// only Close (cmd/testbed down) removes them.
	Persistent bool
}

// Testbed is a set of running test hosts.
type Testbed struct {
	Dir            string // per-bed files: client key, known_hosts
	KeyFile        string // the deploy user's private key (ed25519, no passphrase)
	KnownHostsFile string // every host's key, by address
	hosts          []*Host
	persistent     bool

	mu      sync.Mutex
	closed  bool
	closers []func() error // run by Close before tear-down (the ssh pool)
	targets any            // lazily built pool (see target.go)
}

// Host is one test host.
type Host struct {
	Name           string
	Address        string // 198.51.100.N
	Port           int    // 22
	User           string // "deploy"
	KeyFile        string
	KnownHostsFile string
	HostKeyFile    string // sshd's private host key (ed25519); HostKeyFile+".pub" the public key
	Slot           int
	NetNS          string // network namespace name (ip netns)
	Dir            string // sshd_config, host key, authorized_keys, pid file, sshd.log

	bed *Testbed
}

type slotState struct {
	Slot       int    `json:"slot"`
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	Start      string `json:"start"` // /proc/PID/stat start time: guards against pid reuse
	Persistent bool   `json:"persistent"`
	Bed        string `json:"bed"`
}

// Start starts the hosts. On error nothing is left behind.
func Start(ctx context.Context, opts Options) (*Testbed, error) {
	names := opts.Hosts
	if len(names) == 0 {
		names = []string{"host1"}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] || strings.ContainsAny(n, " \t\n\"'/") {
			return nil, fmt.Errorf("testbed: bad or duplicate host name %q", n)
		}
		seen[n] = true
	}
	if err := ensureUser(ctx); err != nil {
		return nil, err
	}
	for _, d := range []string{Root, filepath.Join(Root, "slots"), filepath.Join(Root, "hosts"), filepath.Join(Root, "beds"), filepath.Join(Root, "mnt"), "/run/sshd", "/run/netns"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("testbed: %w", err)
		}
	}
	bedDir, err := os.MkdirTemp(filepath.Join(Root, "beds"), "bed-")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := os.Chmod(bedDir, 0o755); err != nil {
		return nil, err
	}
	b := &Testbed{
		Dir:            bedDir,
		KeyFile:        filepath.Join(bedDir, "id_ed25519"),
		KnownHostsFile: filepath.Join(bedDir, "known_hosts"),
		persistent:     opts.Persistent,
	}
	slots, err := allocate(ctx, names, b)
	if err != nil {
		os.RemoveAll(bedDir)
		return nil, err
	}
	for i, n := range names {
		ns := fmt.Sprintf("ugtb%d", slots[i])
		b.hosts = append(b.hosts, &Host{
			Name: n, Address: subnet + strconv.Itoa(slots[i]), Port: 22, User: deployUser,
			KeyFile: b.KeyFile, KnownHostsFile: b.KnownHostsFile,
			Slot: slots[i], NetNS: ns, Dir: filepath.Join(Root, "hosts", ns),
			HostKeyFile: filepath.Join(Root, "hosts", ns, "ssh_host_ed25519_key"),
			bed:         b,
		})
	}
	if err := b.start(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Testbed) start(ctx context.Context) error {
	clientPub, err := writeKey(b.KeyFile)
	if err != nil {
		return err
	}
	var kh bytes.Buffer
	for _, h := range b.hosts {
		if err := os.MkdirAll(h.Dir, 0o755); err != nil {
			return err
		}
		pub, err := writeKey(h.HostKeyFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(&kh, "%s %s", h.Address, pub)
		if err := os.WriteFile(filepath.Join(h.Dir, "authorized_keys"), clientPub, 0o644); err != nil {
			return err
		}
		if err := h.writeSSHDConfig(""); err != nil {
			return err
		}
	}
	if err := os.WriteFile(b.KnownHostsFile, kh.Bytes(), 0o644); err != nil {
		return err
	}
	errs := make([]error, len(b.hosts))
	var wg sync.WaitGroup
	for i, h := range b.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.setup(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// setup creates the namespaces and starts sshd.
func (h *Host) setup(ctx context.Context) error {
	// The network and the mounts are independent: set them up in parallel
	// (namespace creation mostly waits on the kernel, not the CPU).
	script := `set -e
(
ip netns add "$NS"
# A fixed MAC per slot: neighbour entries cached for an earlier host on the
# same address stay right (else the first connects hang until they expire).
ip link add "${NS}c" type veth peer name eth0 address "$MAC" netns "$NS"
ip link set "${NS}c" master ` + bridge + ` up
ip -n "$NS" addr add "$ADDR/24" dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up
ip neigh del "$ADDR" dev ` + bridge + ` 2>/dev/null || true
) & net=$!
(
: > "$MNT"
unshare --mount="$MNT" --propagation private sh -ec '
umount -l ` + filepath.Join(Root, "mnt") + ` 2>/dev/null || true
for d in /opt /etc/app /var/log/app /tmp /home/deploy; do mkdir -p $d; mount -t tmpfs -o mode=755 tmpfs $d; done
chmod 1777 /tmp
cp -a /etc/skel/. /home/deploy/
chown -R deploy:deploy /home/deploy /opt /etc/app /var/log/app
'
) & mnt=$!
set +e
wait $net; a=$?
wait $mnt; b=$?
[ $a = 0 ] && [ $b = 0 ]
`
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "NS="+h.NetNS, "ADDR="+h.Address, "MNT="+h.mntFile(), fmt.Sprintf("MAC=02:75:67:74:62:%02x", h.Slot))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: host %s: setup: %v: %s", h.Name, err, bytes.TrimSpace(out))
	}
	return h.StartSSH(ctx)
}

func (h *Host) mntFile() string { return filepath.Join(Root, "mnt", h.NetNS) }

func (h *Host) writeSSHDConfig(extra string) error {
	cfg := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowTcpForwarding yes
UseDNS no
MaxStartups 100:30:200
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
%s
`, h.Address, h.HostKeyFile, filepath.Join(h.Dir, "sshd.pid"), filepath.Join(h.Dir, "authorized_keys"), extra)
	return os.WriteFile(filepath.Join(h.Dir, "sshd_config"), []byte(cfg), 0o644)
}

// writeKey writes a new ed25519 private key (OpenSSH format, 0600) and its
// .pub file; it returns the authorized_keys line.
func writeKey(path string) ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "upgrader-testbed")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := ssh.MarshalAuthorizedKey(spub)
	return line, os.WriteFile(path+".pub", line, 0o644)
}

// Host returns the named host, nil when there is none.
func (b *Testbed) Host(name string) *Host {
	for _, h := range b.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Hosts returns the hosts in the order given to Start.
func (b *Testbed) Hosts() []*Host { return append([]*Host(nil), b.hosts...) }

// Close stops every host and frees its slot. Safe to call twice.
func (b *Testbed) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	closers := b.closers
	b.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	var slots []int
	for _, h := range b.hosts {
		slots = append(slots, h.Slot)
	}
	errs = append(errs, release(slots))
	os.RemoveAll(b.Dir)
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Commands inside a host

// Exec runs a shell command as root inside the host's namespaces and returns
// its combined output; a non-zero exit is an error carrying the output.
func (h *Host) Exec(ctx context.Context, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+h.NetNS, "--mount="+h.mntFile(), "--", "/bin/sh", "-c", command)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testbed: host %s: %q: %v: %s", h.Name, command, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// StartSSH starts sshd (daemonized) and waits until it listens.
func (h *Host) StartSSH(ctx context.Context) error {
	pidFile := filepath.Join(h.Dir, "sshd.pid")
	os.Remove(pidFile)
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+h.NetNS, "--mount="+h.mntFile(), "--",
		"/usr/sbin/sshd", "-f", filepath.Join(h.Dir, "sshd_config"), "-E", filepath.Join(h.Dir, "sshd.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(h.Dir, "sshd.log"))
		return fmt.Errorf("testbed: host %s: sshd: %v: %s%s", h.Name, err, out, log)
	}
	// sshd writes its pid file once the listening socket is bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(h.Dir, "sshd.log"))
			return fmt.Errorf("testbed: host %s: sshd did not start: %s", h.Name, log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// StopSSH kills sshd and every SSH session on the host (as if the host went
// down for SSH); other processes in the host keep running.
func (h *Host) StopSSH(ctx context.Context) error {
	pids, err := nsPIDs(h.NetNS)
	if err != nil {
		return err
	}
	var killed []int
	for _, pid := range pids {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "sshd" {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
	}
	os.Remove(filepath.Join(h.Dir, "sshd.pid"))
	return waitGone(ctx, killed)
}

// RestartSSH rewrites sshd_config with extra lines appended (e.g.
// "HostCertificate /path") and restarts sshd.
func (h *Host) RestartSSH(ctx context.Context, extraConfig string) error {
	if err := h.StopSSH(ctx); err != nil {
		return err
	}
	if err := h.writeSSHDConfig(extraConfig); err != nil {
		return err
	}
	return h.StartSSH(ctx)
}

// RegenerateHostKey gives the host a new host key and restarts sshd; the
// bed's known_hosts keeps the old key (a "changed host key").
func (h *Host) RegenerateHostKey(ctx context.Context) error {
	if _, err := writeKey(h.HostKeyFile); err != nil {
		return err
	}
	return h.RestartSSH(ctx, "")
}

// HostKeyLine returns the known_hosts line for the host's current key.
func (h *Host) HostKeyLine() (string, error) {
	pub, err := os.ReadFile(h.HostKeyFile + ".pub")
	if err != nil {
		return "", err
	}
	return h.Address + " " + string(pub), nil
}

// CutLink takes the host's interface down: packets are silently dropped,
// as on a dead link (no RST, no ICMP).
func (h *Host) CutLink(ctx context.Context) error {
	return run(ctx, "ip", "-n", h.NetNS, "link", "set", "eth0", "down")
}

// RestoreLink brings the host's interface back.
func (h *Host) RestoreLink(ctx context.Context) error {
	if err := run(ctx, "ip", "-n", h.NetNS, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	// Forget a neighbour entry that failed while the link was down.
	exec.CommandContext(ctx, "ip", "neigh", "del", h.Address, "dev", bridge).Run()
	return nil
}

// privateNet holds the addresses of private links (LinkPrivate): a host
// has 203.0.113.SLOT on each of its links.
const privateNet = "203.0.113."

// PrivateAddress is the host's address on its private links (LinkPrivate).
func (h *Host) PrivateAddress() string { return privateNet + strconv.Itoa(h.Slot) }

// LinkPrivate joins h and o by a point-to-point link of their own (a veth
// pair between their namespaces, /32 addresses 203.0.113.SLOT with a route
// to the peer), off the shared bridge: on it each reaches the other's
// PrivateAddress, which neither the controller nor any other host can reach
// (a host behind a jump host). Both sshds also listen on their private
// address, and the bed's known_hosts gets their keys by that address.
func (h *Host) LinkPrivate(ctx context.Context, o *Host) error {
	a, b := h.PrivateAddress(), o.PrivateAddress()
	ha, hb := fmt.Sprintf("p%d", o.Slot), fmt.Sprintf("p%d", h.Slot) // in h's and o's namespace
	script := fmt.Sprintf(`set -e
ip -n %[1]s link add %[3]s type veth peer name %[4]s netns %[2]s
ip -n %[1]s addr add %[5]s/32 dev %[3]s
ip -n %[2]s addr add %[6]s/32 dev %[4]s
ip -n %[1]s link set %[3]s up
ip -n %[2]s link set %[4]s up
ip -n %[1]s route add %[6]s/32 dev %[3]s
ip -n %[2]s route add %[5]s/32 dev %[4]s
`, h.NetNS, o.NetNS, ha, hb, a, b)
	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", script).CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: link %s-%s: %v: %s", h.Name, o.Name, err, bytes.TrimSpace(out))
	}
	f, err := os.OpenFile(h.KnownHostsFile, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, x := range []*Host{h, o} {
		pub, err := os.ReadFile(x.HostKeyFile + ".pub")
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "%s %s", x.PrivateAddress(), pub)
		if err := x.RestartSSH(ctx, "ListenAddress "+x.PrivateAddress()+":22"); err != nil {
			return err
		}
	}
	return nil
}

// MountTmpfs mounts a tmpfs of the given size ("64k", "1m") at path inside
// the host (creating path), owned by the deploy user: a small disk to fill.
func (h *Host) MountTmpfs(ctx context.Context, path, size string) error {
	_, err := h.Exec(ctx, fmt.Sprintf("mkdir -p '%s' && mount -t tmpfs -o size=%s,mode=755 tmpfs '%s' && chown deploy:deploy '%s'", path, size, path, path))
	return err
}

// ---------------------------------------------------------------------------
// Configuration files

// WriteHostsHCL writes an upgrader configuration file with a connection block
// (user deploy, the bed's key and known_hosts) and one host block per host.
func (b *Testbed) WriteHostsHCL(path string) error {
	var buf bytes.Buffer
	// ssh_config = "": the tests do not depend on the machine's ~/.ssh/config.
	fmt.Fprintf(&buf, "# Test hosts written by internal/testbed.\nconnection {\n  user             = %q\n  port             = 22\n  private_key_file = %q\n  known_hosts_file = %q\n  timeout          = \"10s\"\n  ssh_config       = \"\"\n}\n", deployUser, b.KeyFile, b.KnownHostsFile)
	for _, h := range b.hosts {
		fmt.Fprintf(&buf, "\nhost %q {\n  address = %q\n}\n", h.Name, h.Address)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ---------------------------------------------------------------------------
// Slots

func lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(Root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testbed: lock: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Fields after the parenthesised comm; start time is field 22.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func readSlots() (map[int]slotState, error) {
	ents, err := os.ReadDir(filepath.Join(Root, "slots"))
	if err != nil {
		return nil, err
	}
	m := map[int]slotState{}
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			continue
		}
		var s slotState
		data, err := os.ReadFile(filepath.Join(Root, "slots", e.Name()))
		if err == nil {
			json.Unmarshal(data, &s)
		}
		s.Slot = n
		m[n] = s
	}
	return m, nil
}

func (s slotState) stale() bool {
	if s.Persistent {
		_, err := os.Stat(s.Bed)
		return err != nil
	}
	return s.PID == 0 || procStart(s.PID) != s.Start
}

// allocate reserves one slot per host, removing stale slots first.
func allocate(ctx context.Context, names []string, b *Testbed) ([]int, error) {
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	used, err := readSlots()
	if err != nil {
		return nil, err
	}
	for n, s := range used {
		if s.stale() {
			teardown(n)
			delete(used, n)
			if strings.HasPrefix(s.Bed, filepath.Join(Root, "beds")+"/") {
				os.RemoveAll(s.Bed) // its key and known_hosts
			}
		}
	}
	removeOrphanBeds(used)
	if err := ensureShared(ctx); err != nil {
		return nil, err
	}
	pid := os.Getpid()
	var slots []int
	for n := 1; n <= maxSlot && len(slots) < len(names); n++ {
		if _, ok := used[n]; ok {
			continue
		}
		// A leftover namespace without a slot file (crash between steps).
		teardown(n)
		st := slotState{Slot: n, Name: names[len(slots)], PID: pid, Start: procStart(pid), Persistent: b.persistent, Bed: b.Dir}
		data, _ := json.Marshal(st)
		if err := os.WriteFile(filepath.Join(Root, "slots", strconv.Itoa(n)+".json"), data, 0o644); err != nil {
			return nil, err
		}
		slots = append(slots, n)
	}
	if len(slots) < len(names) {
		for _, n := range slots {
			os.Remove(filepath.Join(Root, "slots", strconv.Itoa(n)+".json"))
		}
		return nil, fmt.Errorf("testbed: no free address slots (%d in use)", len(used))
	}
	return slots, nil
}

// removeOrphanBeds removes bed directories no slot refers to any more (left
// by killed processes). Young ones may belong to a Start in progress.
func removeOrphanBeds(used map[int]slotState) {
	ref := map[string]bool{}
	for _, s := range used {
		ref[s.Bed] = true
	}
	dir := filepath.Join(Root, "beds")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if info, err := e.Info(); err == nil && !ref[p] && time.Since(info.ModTime()) > 10*time.Minute {
			os.RemoveAll(p)
		}
	}
}

// ensureShared creates what every bed shares: the bridge with the
// controller's address, and private mounts for the namespace files.
func ensureShared(ctx context.Context) error {
	if _, err := os.Stat("/sys/class/net/" + bridge); err != nil {
		if err := run(ctx, "ip", "link", "add", bridge, "type", "bridge"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "addr", "add", controller+"/24", "dev", bridge); err != nil {
			return err
		}
		if err := run(ctx, "ip", "link", "set", bridge, "up"); err != nil {
			return err
		}
	}
	// Namespace files must live on a private mount (unshare --mount=FILE), and
	// /run/netns on a shared one (what `ip netns add` would do, done once here
	// so that parallel `ip netns add` calls do not race on it).
	mnt := filepath.Join(Root, "mnt")
	if !isMountpoint(mnt) {
		if err := run(ctx, "mount", "--bind", mnt, mnt); err != nil {
			return err
		}
		if err := run(ctx, "mount", "--make-private", mnt); err != nil {
			return err
		}
	}
	if !isMountpoint("/run/netns") {
		if err := run(ctx, "mount", "--bind", "/run/netns", "/run/netns"); err != nil {
			return err
		}
		if err := run(ctx, "mount", "--make-shared", "/run/netns"); err != nil {
			return err
		}
	}
	return nil
}

func isMountpoint(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// release tears down and frees slots; the bridge goes with the last slot.
func release(slots []int) error {
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	for _, n := range slots {
		errs = append(errs, teardown(n))
	}
	if used, err := readSlots(); err == nil && len(used) == 0 {
		exec.Command("ip", "link", "del", bridge).Run()
	}
	return errors.Join(errs...)
}

// teardown removes everything of slot n; missing parts are not errors.
func teardown(n int) error {
	ns := fmt.Sprintf("ugtb%d", n)
	var errs []error
	if _, err := os.Stat("/run/netns/" + ns); err == nil {
		pids, _ := nsPIDs(ns)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(context.Background(), pids)
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
		}
	}
	if _, err := os.Stat("/sys/class/net/" + ns + "c"); err == nil {
		exec.Command("ip", "link", "del", ns+"c").Run()
	}
	mnt := filepath.Join(Root, "mnt", ns)
	if _, err := os.Stat(mnt); err == nil {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		os.Remove(mnt)
	}
	os.RemoveAll(filepath.Join(Root, "hosts", ns))
	os.Remove(filepath.Join(Root, "slots", strconv.Itoa(n)+".json"))
	return errors.Join(errs...)
}

// nsPIDs lists the processes in network namespace ns.
func nsPIDs(ns string) ([]int, error) {
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &want); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

func waitGone(ctx context.Context, pids []int) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for {
			// A zombie has no /proc/PID/ns: it holds nothing any more.
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("testbed: process %d did not exit", pid)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

var userOnce sync.Mutex

// ensureUser creates the deploy user (Debian default shell set-up from
// /etc/skel, no password, passwordless sudo) when absent.
func ensureUser(ctx context.Context) error {
	userOnce.Lock()
	defer userOnce.Unlock()
	if _, err := user.Lookup(deployUser); err != nil {
		unlock, err := lock2()
		if err != nil {
			return err
		}
		defer unlock()
		if _, err := user.Lookup(deployUser); err != nil {
			if err := run(ctx, "useradd", "--create-home", "--shell", "/bin/bash", deployUser); err != nil {
				return err
			}
		}
	}
	// "*": no password login, but not a locked account (sshd refuses "!" without PAM).
	if data, err := os.ReadFile("/etc/shadow"); err == nil && bytes.Contains(data, []byte("\n"+deployUser+":!")) || bytes.HasPrefix(data, []byte(deployUser+":!")) {
		if err := run(ctx, "usermod", "-p", "*", deployUser); err != nil {
			return err
		}
	}
	sudoers := "/etc/sudoers.d/upgrader-testbed-deploy"
	if _, err := os.Stat(sudoers); err != nil {
		if err := os.WriteFile(sudoers+".tmp", []byte(deployUser+" ALL=(ALL) NOPASSWD: ALL\n"), 0o440); err != nil {
			return err
		}
		if err := os.Rename(sudoers+".tmp", sudoers); err != nil {
			return err
		}
	}
	return nil
}

// SudoPasswordUser is a second login user (the bed's key, like deploy)
// whose sudo asks for a password; PasswordSudo creates it.
const SudoPasswordUser = "deploypw"

// PasswordSudo creates SudoPasswordUser when absent, with a random password
// and `ALL=(ALL) ALL` in /etc/sudoers.d/upgrader-testbed-deploypw, and
// returns the password (kept in Root, 0600, so that every process agrees).
func PasswordSudo(ctx context.Context) (string, error) {
	unlock, err := lock2()
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := user.Lookup(SudoPasswordUser); err != nil {
		if err := run(ctx, "useradd", "--create-home", "--shell", "/bin/bash", SudoPasswordUser); err != nil {
			return "", err
		}
	}
	pwFile := filepath.Join(Root, "sudo-password")
	pw, err := os.ReadFile(pwFile)
	if err != nil || len(pw) == 0 {
		b := make([]byte, 12)
		rand.Read(b)
		pw = []byte(fmt.Sprintf("tb-%x", b))
		cmd := exec.CommandContext(ctx, "chpasswd")
		cmd.Stdin = strings.NewReader(SudoPasswordUser + ":" + string(pw) + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("testbed: chpasswd: %v: %s", err, out)
		}
		if err := os.WriteFile(pwFile, pw, 0o600); err != nil {
			return "", err
		}
	}
	sudoers := "/etc/sudoers.d/upgrader-testbed-" + SudoPasswordUser
	if _, err := os.Stat(sudoers); err != nil {
		if err := os.WriteFile(sudoers+".tmp", []byte(SudoPasswordUser+" ALL=(ALL) ALL\n"), 0o440); err != nil {
			return "", err
		}
		if err := os.Rename(sudoers+".tmp", sudoers); err != nil {
			return "", err
		}
	}
	return string(pw), nil
}

// lock2 serialises user creation across processes (before Root exists).
func lock2() (func(), error) {
	if err := os.MkdirAll(Root, 0o755); err != nil {
		return nil, err
	}
	return lock()
}
