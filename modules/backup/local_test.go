package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/upgrader-dev/upgrader/modules"
)

// localTarget is a modules.Target running commands with /bin/sh on this
// machine: unit tests of the scripts (real find, tar, rm) without SSH.
// Integration tests use real test hosts (internal/testbed).
type localTarget struct {
	name string
	// cutAfter, when > 0, fails the stream after that many stdout bytes,
	// as a dropped connection would.
	cutAfter int64
}

var _ modules.Target = (*localTarget)(nil)

func (l *localTarget) Host() modules.HostInfo {
	return modules.HostInfo{Name: l.name, Address: "127.0.0.1"}
}

func (l *localTarget) Stat(ctx context.Context, p string) (modules.FileInfo, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return modules.FileInfo{}, nil
	}
	if err != nil {
		return modules.FileInfo{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return modules.FileInfo{Exists: true, IsDir: fi.IsDir(), Mode: fi.Mode(), Size: fi.Size(), UID: int(st.Uid), GID: int(st.Gid), ModTime: fi.ModTime()}, nil
}

func (l *localTarget) SHA256(ctx context.Context, p string) (string, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), err
}

func (l *localTarget) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func (l *localTarget) Probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return l.Run(ctx, cmd)
}

func (l *localTarget) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	if l.cutAfter > 0 && cmd.Stdout != nil {
		cmd.Stdout = &cutWriter{w: cmd.Stdout, left: l.cutAfter}
	}
	cmd.Sudo = false // root already
	res, err := localRunner{}.run(ctx, cmd)
	if l.cutAfter > 0 && cmd.Stdout != nil && cmd.Stdout.(*cutWriter).cut {
		return res, fmt.Errorf("connection lost")
	}
	return res, err
}

func (l *localTarget) WriteFile(ctx context.Context, p string, r io.Reader, mode os.FileMode) error {
	return errors.New("not used")
}

func (l *localTarget) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

type cutWriter struct {
	w    io.Writer
	left int64
	cut  bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) >= c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left = 0
		c.cut = true
		return n, errors.New("connection lost")
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}
