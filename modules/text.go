package modules

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
)

// ShellQuote quotes s for a POSIX shell command line (single quotes), so
// paths and values given by users can be spliced into a Command.Cmd.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// HostError is a failure on one host; its text starts `host "NAME": `.
// Callers find it with errors.As (or ErrorHost), never by its text. The SSH
// transport's errors are host errors too: anything with a HostName method.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string    { return fmt.Sprintf("host %q: %v", e.Host, e.Err) }
func (e *HostError) Unwrap() error    { return e.Err }
func (e *HostError) HostName() string { return e.Host }

// ErrorHost returns the host that err, or an error it wraps, is a failure
// of ("" when none).
func ErrorHost(err error) string {
	var he interface{ HostName() string }
	if errors.As(err, &he) {
		return he.HostName()
	}
	return ""
}

// OnHost makes err a HostError of host unless it already is one of that
// host (the transport's errors are), so every host failure names its host once.
func OnHost(host string, err error) error {
	if err == nil || ErrorHost(err) == host {
		return err
	}
	return &HostError{Host: host, Err: err}
}

// Sensitive reports whether obj.attr carries a mark on a known value: the
// values of sensitive variables, and everything computed from them, do.
func Sensitive(obj cty.Value, attr string) bool {
	if obj.IsNull() || !obj.IsKnown() {
		return false
	}
	if obj.IsMarked() {
		return obj.IsWhollyKnown()
	}
	if !obj.Type().IsObjectType() || !obj.Type().HasAttribute(attr) {
		return false
	}
	v := obj.GetAttr(attr)
	return v.IsWhollyKnown() && v.ContainsMarked()
}

// Shown is obj.attr as a string for plans, logs, errors and the journal:
// "(sensitive)" when it is sensitive.
func Shown(obj cty.Value, attr string) string {
	if Sensitive(obj, attr) {
		return "(sensitive)"
	}
	return GetString(obj, attr)
}

// SyncWriter serializes writes to w, so one writer (a request's Log) can be
// given as both Command.Stdout and Command.Stderr, which a transport fills
// from two goroutines. nil stays nil.
func SyncWriter(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &syncWriter{w: w}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// HumanBytes formats a size for plans and progress lines: 312 B, 4.6 MiB.
func HumanBytes(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
