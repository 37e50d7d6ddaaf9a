package modules

import (
	"bytes"
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

// LineWriter passes w only whole lines (up to 64 KiB at once), so two
// streams that share w (a command's stdout and stderr) never mix within a
// line: a secret cut in two by the other stream would escape the scrubber.
// Flush writes what is left.
type LineWriter struct {
	w   io.Writer
	buf []byte
}

// Lines returns a LineWriter for w (nil: everything is dropped).
func Lines(w io.Writer) *LineWriter { return &LineWriter{w: w} }

func (l *LineWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 && len(l.buf) > 64<<10 {
		end = len(l.buf)
	}
	if end > 0 {
		_, err := l.w.Write(l.buf[:end])
		l.buf = append(l.buf[:0], l.buf[end:]...)
		if err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush writes a last line that had no newline.
func (l *LineWriter) Flush() {
	if l.w != nil && len(l.buf) > 0 {
		l.w.Write(l.buf)
		l.buf = l.buf[:0]
	}
}
