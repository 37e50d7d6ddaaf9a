package journal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockInfo is the content of .upgrader/lock: who holds the state directory.
type LockInfo struct {
	User  string    `json:"user"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Run   string    `json:"run"`
	Since time.Time `json:"since"`
	// Start is the holder's start time from /proc (clock ticks since boot),
	// so that another process reusing the pid after a reboot is not taken
	// for the holder.
	Start string `json:"start,omitempty"`
	// A lease (shared backends): the holder renews it before Expires;
	// Epoch grows with every new holder and fences the old one's writes.
	Epoch   int64     `json:"epoch,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// LockedError is returned when another run holds the lock.
type LockedError struct {
	Path   string
	Holder LockInfo
	// Stale: the holder's pid is dead on this very machine, or its lease expired.
	Stale bool
	// What is locked ("" : "state directory"; a shared store names its workspace).
	What string
}

func (e *LockedError) Error() string {
	h := e.Holder
	what := e.What
	if what == "" {
		what = "state directory"
	}
	msg := fmt.Sprintf("%s is locked by %s@%s (pid %d, run %s) since %s",
		what, h.User, h.Host, h.PID, h.Run, h.Since.Local().Format(time.RFC3339))
	if !h.Expires.IsZero() {
		if e.Stale {
			return msg + fmt.Sprintf("; its lease expired at %s (the holder stopped renewing it): continue that run with `upgrader resume %s`, or clear it with `upgrader unlock -force`", h.Expires.Local().Format(time.RFC3339), h.Run)
		}
		return msg + fmt.Sprintf("; the holder renews its lease (valid until %s)", h.Expires.Local().Format(time.RFC3339))
	}
	if e.Stale {
		msg += fmt.Sprintf("; process %d is no longer running on this machine: the lock is stale, clear it with `upgrader unlock` (or continue that run with `upgrader resume %s`)", h.PID, h.Run)
	}
	return msg
}

// LockFile is the lock's name inside the state directory.
const LockFile = "lock"

// Lock is a held lock.
type Lock struct {
	path string
	Info LockInfo
}

// Me describes the current process as a lock holder for run.
func Me(run string) LockInfo {
	u := "unknown"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	h, _ := os.Hostname()
	return LockInfo{User: u, Host: h, PID: os.Getpid(), Run: run, Since: time.Now().UTC().Truncate(time.Second), Start: procStart(os.Getpid())}
}

// Acquire takes the lock of stateDir for run. When it is held it returns a
// *LockedError naming the holder (and whether it is stale).
func Acquire(stateDir, run string) (*Lock, error) {
	return acquire(stateDir, Me(run))
}

// guard serialises every change of the lock file between processes and
// goroutines: flock on a separate file that is never removed. Checking a
// stale holder, removing its lock and linking ours is one step under it, so
// racing takers cannot each remove the lock another just took.
func guard(stateDir string) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(stateDir, GuardFile), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock guard: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state directory lock guard: flock: %w", err)
	}
	return func() { f.Close() }, nil // closing the descriptor drops the flock
}

// GuardFile is the flock(2) target beside the lock (never removed).
const GuardFile = "lock.guard"

func acquire(stateDir string, me LockInfo) (*Lock, error) {
	unlock, err := guard(stateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return acquireLocked(stateDir, me)
}

func acquireLocked(stateDir string, me LockInfo) (*Lock, error) {
	path := filepath.Join(stateDir, LockFile)
	data, err := json.MarshalIndent(me, "", "  ")
	if err != nil {
		return nil, err
	}
	// Write a private file, then hard-link it to the lock name: link fails
	// when the lock exists, and nobody ever sees a half-written lock.
	tmp, err := os.CreateTemp(stateDir, ".lock-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("taking lock %s: %w", path, err)
		}
		holder, rerr := ReadLock(stateDir)
		if rerr != nil {
			return nil, fmt.Errorf("state directory is locked (%s), and the lock cannot be read: %w", path, rerr)
		}
		return nil, &LockedError{Path: path, Holder: *holder, Stale: IsStale(*holder)}
	}
	if err := syncDir(stateDir); err != nil {
		return nil, err
	}
	return &Lock{path: path, Info: me}, nil
}

// TakeOver replaces a stale lock held by run (a resume of the run whose
// process died). It refuses a live holder or another run's lock.
func TakeOver(stateDir, run string) (*Lock, error) {
	unlock, err := guard(stateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	me := Me(run)
	l, err := acquireLocked(stateDir, me)
	var le *LockedError
	if !errors.As(err, &le) {
		return l, err
	}
	if !le.Stale || le.Holder.Run != run {
		return nil, err
	}
	if err := os.Remove(le.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return acquireLocked(stateDir, me)
}

// ReadLock returns the current holder, or os.ErrNotExist (wrapped).
func ReadLock(stateDir string) (*LockInfo, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, LockFile))
	if err != nil {
		return nil, err
	}
	var li LockInfo
	if err := json.Unmarshal(b, &li); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", filepath.Join(stateDir, LockFile), err)
	}
	return &li, nil
}

// IsStale reports whether the holder is a dead process on this machine.
// A holder on another machine is never judged stale from here.
func IsStale(li LockInfo) bool {
	h, _ := os.Hostname()
	if li.Host != h || li.PID <= 0 {
		return false
	}
	if !pidAlive(li.PID) {
		return true
	}
	return li.Start != "" && procStart(li.PID) != li.Start
}

// procStart returns field 22 of /proc/PID/stat (the start time), "" when unknown.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	// the command name (field 2) may hold spaces: count fields after its closing paren
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Release removes the lock if it is still ours.
func (l *Lock) Release() error {
	unlock, err := guard(filepath.Dir(l.path))
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := ReadLock(filepath.Dir(l.path))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if cur.PID != l.Info.PID || cur.Run != l.Info.Run || cur.Host != l.Info.Host {
		return nil
	}
	return os.Remove(l.path)
}

// Unlock clears a stale lock (`upgrader unlock`). A live holder, or one on
// another machine, is refused unless force is set.
func Unlock(stateDir string, force bool) (*LockInfo, error) {
	if _, err := os.Stat(stateDir); err != nil {
		return nil, fmt.Errorf("%s is not locked", stateDir)
	}
	unlock, err := guard(stateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	li, err := ReadLock(stateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not locked", stateDir)
		}
		return nil, err
	}
	if !force && !IsStale(*li) {
		h, _ := os.Hostname()
		if li.Host != h {
			return li, fmt.Errorf("lock held by %s@%s (pid %d, run %s) on another machine: upgrader cannot tell whether it is alive; use -force if you are sure it is not",
				li.User, li.Host, li.PID, li.Run)
		}
		return li, fmt.Errorf("lock held by %s@%s (pid %d, run %s), and that process is still running", li.User, li.Host, li.PID, li.Run)
	}
	if err := os.Remove(filepath.Join(stateDir, LockFile)); err != nil {
		return li, err
	}
	return li, nil
}

// NewRunID returns a sortable run id: UTC start time to the millisecond plus
// 4 random hex digits (20261128T101500.123-abcd). The milliseconds keep two
// runs started in the same second in order: the newest run is the last id.
func NewRunID(t time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000") + "-" + hex.EncodeToString(b[:])
}
