package modtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
)

// LocalHost is a modules.Target on this machine: commands run in /bin/sh,
// files are this machine's (tests give paths under a temp dir). It passes
// executor/ssh/targettest like the SSH target, so module tests that need
// real commands and files but no network use it instead of a fake of their
// own. Sudo is ignored when the test runs as root, else `sudo -n`.
type LocalHost struct {
	Name string
	// Timeout is the default command timeout (0: 2 minutes).
	Timeout time.Duration
	// Down, when set, fails every call as a dead connection would.
	Down func() bool
	// Commands, when set, sees every command line before it runs.
	Commands func(cmd string)
}

var _ modules.Target = (*LocalHost)(nil)

// NewLocalHost returns a local target called name.
func NewLocalHost(name string) *LocalHost { return &LocalHost{Name: name} }

// Exec runs cmd in /bin/sh as this process's user (root in integration
// tests): the "look behind the target's back" of targettest and Snapshot.
func (h *LocalHost) Exec(ctx context.Context, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

func (h *LocalHost) Host() modules.HostInfo {
	return modules.HostInfo{Name: h.Name, Address: "127.0.0.1", Port: 22, User: os.Getenv("USER")}
}

func (h *LocalHost) down() error {
	if h.Down != nil && h.Down() {
		return fmt.Errorf("host %q: connection lost", h.Name)
	}
	return nil
}

func (h *LocalHost) Stat(ctx context.Context, p string) (modules.FileInfo, error) {
	if err := h.down(); err != nil {
		return modules.FileInfo{}, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return modules.FileInfo{}, nil
	}
	if err != nil {
		return modules.FileInfo{}, err
	}
	out := modules.FileInfo{Exists: true, IsDir: fi.IsDir(), IsLink: fi.Mode()&os.ModeSymlink != 0,
		Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out.UID, out.GID = int(st.Uid), int(st.Gid)
	}
	if out.IsLink {
		if out.LinkTarget, err = os.Readlink(p); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (h *LocalHost) SHA256(ctx context.Context, p string) (string, error) {
	if err := h.down(); err != nil {
		return "", err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if fi, err = os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return "", nil
		} else if err != nil {
			return "", err
		}
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("sha256 %s: not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(s.Sum(nil)), nil
}

func (h *LocalHost) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	if err := h.down(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func (h *LocalHost) Probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return h.Run(ctx, cmd)
}

// capped keeps the first MaxOutput bytes of a stream and copies all of it
// to w.
type capped struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
	w         io.Writer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		c.w.Write(p)
	}
	room := modules.MaxOutput - c.buf.Len()
	if len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.truncated = true
	} else {
		c.buf.Write(p)
	}
	return len(p), nil
}

// Run runs cmd in its own process group, killed as a whole on timeout or
// cancellation (a background child that ignores SIGTERM included).
func (h *LocalHost) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	if err := h.down(); err != nil {
		return modules.Result{}, err
	}
	if h.Commands != nil {
		h.Commands(cmd.Cmd)
	}
	timeout := cmd.Timeout
	if timeout <= 0 {
		timeout = h.Timeout
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	argv := []string{"/bin/sh", "-c", cmd.Cmd}
	if cmd.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(cmd.Env)) {
		c.Env = append(c.Env, k+"="+cmd.Env[k])
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, stderr := &capped{w: cmd.Stdout}, &capped{w: cmd.Stderr}
	c.Stdout, c.Stderr, c.Stdin = stdout, stderr, cmd.Stdin
	// A background child that keeps the output pipes open must not hang
	// Run forever; long enough that a loaded machine still copies all output.
	c.WaitDelay = 10 * time.Second
	if err := c.Start(); err != nil {
		return modules.Result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err, why error
	select {
	case err = <-done:
	case <-timer.C:
		why = fmt.Errorf("host %q: command timed out after %v", h.Name, timeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	if why != nil {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
		return modules.Result{ExitCode: -1, Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes()}, why
	}
	res := modules.Result{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(), Truncated: stdout.truncated || stderr.truncated}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return res, err
	}
	return res, nil
}

// WriteFile writes atomically with the mode set at open: a 0600 file made
// with O_EXCL beside path, filled, fsynced, chmodded, renamed over path.
func (h *LocalHost) WriteFile(ctx context.Context, p string, r io.Reader, mode os.FileMode) error {
	if err := h.down(); err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("host %q: write %s: directory %s does not exist", h.Name, p, dir)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(p)+".upgrader-"+strings.ToLower(rand.Text()[:12])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("host %q: write %s: %w", h.Name, p, err)
	}
	err = func() error {
		if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		return f.Chmod(mode.Perm())
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("host %q: write %s: %w", h.Name, p, err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (h *LocalHost) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := h.down(); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
