package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/upgrader-dev/upgrader/modules"
)

// sftpCall runs fn with the connection's SFTP client, bounded by ctx (pkg/sftp
// takes no context: on cancellation the call is abandoned, and a dead link is
// ended by the keepalives).
func (c *conn) sftpCall(ctx context.Context, fn func(*sftp.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	cl, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn(cl) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err()
	}
}

// Stat describes path without following a final symlink.
func (t *Target) Stat(ctx context.Context, p string) (modules.FileInfo, error) {
	var fi modules.FileInfo
	err := t.do(ctx, "stat "+p, true, func(c *conn) error {
		return c.sftpCall(ctx, func(cl *sftp.Client) error {
			st, err := cl.Lstat(p)
			if errors.Is(err, os.ErrNotExist) {
				fi = modules.FileInfo{}
				return nil
			}
			if err != nil {
				return err
			}
			fi = modules.FileInfo{Exists: true, IsDir: st.IsDir(), IsLink: st.Mode()&os.ModeSymlink != 0,
				Mode: st.Mode(), Size: st.Size(), ModTime: st.ModTime()}
			if s, ok := st.Sys().(*sftp.FileStat); ok {
				fi.UID, fi.GID = int(s.UID), int(s.GID)
			}
			if fi.IsLink {
				if fi.LinkTarget, err = cl.ReadLink(p); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if errors.Is(err, os.ErrPermission) && t.cfg.Sudo {
		return t.statSudo(ctx, p)
	}
	return fi, err
}

// statSudo stats through `sudo -n stat` (sudo mode, path not visible to the
// login user).
func (t *Target) statSudo(ctx context.Context, p string) (modules.FileInfo, error) {
	q := modules.ShellQuote(p)
	res, err := t.run(ctx, "stat "+p, modules.Command{Sudo: true, Cmd: fmt.Sprintf(
		"if [ -e %[1]s ] || [ -L %[1]s ]; then stat -c '%%f %%s %%u %%g %%Y' -- %[1]s && readlink -- %[1]s; true; else echo missing; fi", q)})
	if err != nil {
		return modules.FileInfo{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	if res.ExitCode != 0 || len(lines) == 0 {
		return modules.FileInfo{}, t.errf("stat "+p, fmt.Errorf("sudo stat: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr))))
	}
	if lines[0] == "missing" {
		return modules.FileInfo{}, nil
	}
	var raw uint32
	var size, mtime int64
	var fi modules.FileInfo
	if _, err := fmt.Sscanf(lines[0], "%x %d %d %d %d", &raw, &size, &fi.UID, &fi.GID, &mtime); err != nil {
		return fi, t.errf("stat "+p, fmt.Errorf("sudo stat: %q: %w", lines[0], err))
	}
	fi.Exists, fi.Size, fi.ModTime, fi.Mode = true, size, time.Unix(mtime, 0), unixMode(raw)
	fi.IsDir, fi.IsLink = fi.Mode.IsDir(), fi.Mode&os.ModeSymlink != 0
	if fi.IsLink && len(lines) > 1 {
		fi.LinkTarget = lines[1]
	}
	return fi, nil
}

// unixMode converts a raw st_mode to an os.FileMode.
func unixMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= os.ModeDir
	case 0o120000:
		mode |= os.ModeSymlink
	case 0o010000:
		mode |= os.ModeNamedPipe
	case 0o140000:
		mode |= os.ModeSocket
	case 0o020000:
		mode |= os.ModeDevice | os.ModeCharDevice
	case 0o060000:
		mode |= os.ModeDevice
	}
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// ReadFile reads at most limit bytes of path (through `sudo -n cat` when the
// file is not readable and the host is in sudo mode).
func (t *Target) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	var data []byte
	err := t.do(ctx, "read "+p, true, func(c *conn) error {
		return c.sftpCall(ctx, func(cl *sftp.Client) error {
			f, err := cl.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			data, err = io.ReadAll(io.LimitReader(f, limit))
			return err
		})
	})
	if errors.Is(err, os.ErrPermission) && t.cfg.Sudo {
		var buf bytes.Buffer
		lw := &limitWriter{w: &buf, n: limit}
		res, rerr := t.run(ctx, "read "+p, modules.Command{Cmd: "cat -- " + modules.ShellQuote(p), Sudo: true, Stdout: lw})
		if rerr != nil {
			return nil, rerr
		}
		if res.ExitCode != 0 {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return data, err
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	n := len(p)
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	l.n -= int64(len(p))
	l.w.Write(p)
	return n, nil
}

// SHA256 hashes a regular file remotely with sha256sum; hosts without it
// are read over SFTP and hashed here. "" when path does not exist.
func (t *Target) SHA256(ctx context.Context, p string) (string, error) {
	q := modules.ShellQuote(p)
	res, err := t.run(ctx, "sha256 "+p, modules.Command{Cmd: fmt.Sprintf(
		"if [ -f %s ]; then sha256sum < %s; elif [ -e %s ] || [ -L %s ]; then echo 'not a regular file' >&2; exit 3; else echo missing; fi", q, q, q, q)})
	if err != nil {
		return "", err
	}
	out := strings.TrimSpace(string(res.Stdout))
	switch {
	case res.ExitCode == 0 && out == "missing":
		return "", nil
	case res.ExitCode == 0 && len(out) >= 64:
		return out[:64], nil
	case res.ExitCode == 3:
		return "", t.errf("sha256 "+p, errors.New("not a regular file"))
	case res.ExitCode == 127:
		return t.sha256SFTP(ctx, p)
	}
	return "", t.errf("sha256 "+p, fmt.Errorf("exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr))))
}

func (t *Target) sha256SFTP(ctx context.Context, p string) (string, error) {
	var sum string
	err := t.do(ctx, "sha256 "+p, true, func(c *conn) error {
		return c.sftpCall(ctx, func(cl *sftp.Client) error {
			f, err := cl.Open(p)
			if errors.Is(err, os.ErrNotExist) {
				sum = ""
				return nil
			}
			if err != nil {
				return err
			}
			defer f.Close()
			h := sha256.New()
			if _, err := f.WriteTo(h); err != nil {
				return err
			}
			sum = hex.EncodeToString(h.Sum(nil))
			return nil
		})
	})
	return sum, err
}

// ctxReader fails reads once ctx is done, so a cancelled upload stops.
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

// WriteFile writes r to path atomically: a temporary name in the same
// directory, fsync, chmod, then rename over path. On failure the temporary
// file is removed when the host is still reachable; path is never partial.
// In sudo mode the data goes to a temporary file of the login user first and
// `sudo -n` copies it next to path and renames it into place.
func (t *Target) WriteFile(ctx context.Context, p string, r io.Reader, mode os.FileMode) error {
	if t.cfg.Sudo {
		return t.writeSudo(ctx, p, r, mode)
	}
	// Not retried on a new connection: r has been consumed.
	return t.do(ctx, "write "+p, false, func(c *conn) error {
		return c.upload(ctx, p, r, mode, t.leave)
	})
}

// upload writes through a private directory; when the connection dies
// before it is removed, leave gets it, for the next connection to remove.
func (c *conn) upload(ctx context.Context, p string, r io.Reader, mode os.FileMode, leave func(priv, tmp string)) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	cl, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	dir, base := path.Split(p)
	if dir == "" {
		dir = "."
	}
	// SFTP cannot give a mode at open (the file would be 0644 under the
	// server's umask while it fills): the file is written in a directory of
	// its own, 0700 before anything is in it, and leaves it with its mode.
	priv := path.Join(dir, "."+base+".upgrader-"+boundary()[11:23]+".tmp")
	tmp := path.Join(priv, base)
	made := false
	// Synchronous (not sftpCall): the rename must never happen after we
	// returned an error. ctxReader stops the copy on cancellation; the
	// keepalives end a dead link.
	err = func() error {
		if err := cl.Mkdir(priv); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("directory %s does not exist", dir)
			}
			return err
		}
		made = true
		if err := cl.Chmod(priv, 0o700); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		f, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		if _, err := f.ReadFromWithConcurrency(ctxReader{ctx, r}, 64); err != nil {
			f.Close()
			return explainWrite(cl, dir, err)
		}
		if err := f.Sync(); err != nil && !isUnsupported(err) {
			f.Close()
			return explainWrite(cl, dir, fmt.Errorf("fsync: %w", err))
		}
		if err := f.Chmod(mode.Perm()); err != nil {
			f.Close()
			return fmt.Errorf("chmod: %w", err)
		}
		if err := f.Close(); err != nil {
			return explainWrite(cl, dir, err)
		}
		if err := cl.PosixRename(tmp, p); err != nil {
			return fmt.Errorf("rename into place: %w", err)
		}
		return nil
	}()
	if made {
		gone := false
		if c.alive() {
			if err != nil {
				cl.Remove(tmp)
			}
			gone = cl.RemoveDirectory(priv) == nil
		}
		if !gone && leave != nil {
			leave(priv, tmp)
		}
	}
	return err
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

// explainWrite turns sftp-server's bare "failure" status into a reason when
// the destination file system is full.
func explainWrite(cl *sftp.Client, dir string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return err
	}
	if st, serr := cl.StatVFS(dir); serr == nil && st.Bavail*st.Frsize < 64<<10 {
		return fmt.Errorf("no space left on device (file system of %s has %d bytes free): %w", dir, st.Bavail*st.Frsize, err)
	}
	return err
}

// writeSudo uploads to the login user's temp file (0600 from the start),
// then as root copies it beside path without following a planted name
// (modules.Copy), keeps the old owner, sets the mode and renames.
func (t *Target) writeSudo(ctx context.Context, p string, r io.Reader, mode os.FileMode) error {
	stage := "/tmp/.upgrader-" + boundary()[11:31]
	err := t.do(ctx, "write "+p, false, func(c *conn) error { return c.upload(ctx, stage, r, 0o600, t.leave) })
	if err != nil {
		return err
	}
	script := modules.Copy{Src: stage, Dest: p, Mode: mode.Perm(), KeepOwner: true, OwnSrc: true}.Script()
	res, err := t.run(ctx, "write "+p, modules.Command{Cmd: script, Sudo: true})
	t.run(context.WithoutCancel(ctx), "write "+p, modules.Command{Cmd: "rm -f -- " + modules.ShellQuote(stage)})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return t.errf("write "+p, fmt.Errorf("sudo: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr))))
	}
	return nil
}
