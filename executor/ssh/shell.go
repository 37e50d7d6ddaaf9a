package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/upgrader-dev/upgrader/modules"
)

// A shell is a long-lived remote /bin/sh in one session. Each command runs in
// its own subshell `( ... )` with stdin from /dev/null, followed by framing
// lines carrying a random boundary and the exit status on stdout and stderr:
// a command costs one round trip and a fork, not a session, a process
// start and a login-shell start-up.
type shell struct {
	c     *conn
	sess  *ssh.Session
	stdin io.WriteCloser
	out   stream
	errs  stream
	pid   int // the remote shell's pid: its children are the running command
}

func boundary() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "__UPGRADER_" + hex.EncodeToString(b)
}

func (c *conn) newShell(ctx context.Context) (*shell, error) {
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, err
	}
	sh := &shell{c: c, sess: sess}
	fail := func(err error) (*shell, error) {
		sess.Close()
		c.release()
		return nil, notStarted{fmt.Errorf("starting the remote shell: %w", err)}
	}
	if sh.stdin, err = sess.StdinPipe(); err != nil {
		return fail(err)
	}
	o, err := sess.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	e, err := sess.StderrPipe()
	if err != nil {
		return fail(err)
	}
	sh.out.r, sh.errs.r = o, e
	// exec: the login shell (bash -c for deploy) is replaced by a plain
	// /bin/sh, without login start-up files.
	if err := sess.Start("exec /bin/sh"); err != nil {
		return fail(err)
	}
	b := boundary()
	if _, err := fmt.Fprintf(sh.stdin, "printf '\\n%s %%d\\n' $$\n", b); err != nil {
		return fail(err)
	}
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := sh.out.until([]byte("\n"+b+" "), func([]byte) {})
		ch <- res{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return fail(r.err)
		}
		if sh.pid, err = strconv.Atoi(r.line); err != nil {
			return fail(fmt.Errorf("bad start-up line %q", r.line))
		}
		return sh, nil
	case <-ctx.Done():
		sess.Close()
		<-ch
		c.release()
		return nil, notStarted{ctx.Err()}
	}
}

// exitReason says how a shell that went away ended (its exit status or the
// signal that killed it), when the server tells within a moment.
func (sh *shell) exitReason() string {
	done := make(chan error, 1)
	go func() { done <- sh.sess.Wait() }()
	select {
	case err := <-done:
		var ee *ssh.ExitError
		switch {
		case errors.As(err, &ee) && ee.Signal() != "":
			return fmt.Sprintf(" (killed by SIG%s)", ee.Signal())
		case errors.As(err, &ee):
			return fmt.Sprintf(" (exit status %d)", ee.ExitStatus())
		case err == nil:
			return " (exit status 0)"
		default:
			return fmt.Sprintf(" (%v)", err)
		}
	case <-time.After(time.Second):
		return ""
	}
}

func (sh *shell) close() {
	sh.sess.Close()
	sh.c.release()
}

// getShell returns an idle shell or starts one (up to MaxShells per host).
func (c *conn) getShell(ctx context.Context) (*shell, error) {
	select {
	case sh := <-c.idle:
		return sh, nil
	default:
	}
	select {
	case sh := <-c.idle:
		return sh, nil
	case c.shellTokens <- struct{}{}:
		sh, err := c.newShell(ctx)
		if err != nil {
			<-c.shellTokens
			return nil, err
		}
		return sh, nil
	case <-ctx.Done():
		return nil, notStarted{ctx.Err()}
	case <-c.done:
		return nil, notStarted{c.err()}
	}
}

func (c *conn) putShell(sh *shell) { c.idle <- sh }

func (c *conn) dropShell(sh *shell) {
	sh.close()
	<-c.shellTokens
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// output collects one stream of a command: a capped copy for the Result and
// the streamed copy for the caller's writer.
type output struct {
	buf       bytes.Buffer
	truncated bool
	w         io.Writer
}

func (o *output) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if o.w != nil {
		o.w.Write(p)
	}
	room := modules.MaxOutput - o.buf.Len()
	if len(p) > room {
		p = p[:max(room, 0)]
		o.truncated = true
	}
	o.buf.Write(p)
}

// run runs one command on the shell. A returned error with a nil result
// means the shell is unusable (the caller drops it).
func (sh *shell) run(ctx context.Context, cmd modules.Command, text string, sudo bool, timeout time.Duration) (modules.Result, bool, error) {
	b := boundary()
	// The shell first acknowledges the command ("B S"), then runs it and
	// frames its status ("B N"): a shell that died before the acknowledgement
	// never started the command, so it is safe to retry on a new shell.
	line := fmt.Sprintf("printf '\\n%s S\\n'; ( %s ) </dev/null\nprintf '\\n%s %%d\\n' $?; printf '\\n%s\\n' >&2\n", b, "eval "+modules.ShellQuote(text), b, b)
	if _, err := io.WriteString(sh.stdin, line); err != nil {
		return modules.Result{}, false, notStarted{fmt.Errorf("remote shell: %w", err)}
	}
	var stdout, stderr output
	stdout.w, stderr.w = cmd.Stdout, cmd.Stderr
	type res struct {
		status string
		err    error
	}
	outc := make(chan res, 1)
	errc := make(chan error, 1)
	go func() {
		marker := []byte("\n" + b + " ")
		s, err := sh.out.until(marker, stdout.write)
		switch {
		case err != nil:
			err = notStarted{err}
		case s != "S":
			err = fmt.Errorf("bad acknowledgement %q", s)
		default:
			s, err = sh.out.until(marker, stdout.write)
		}
		outc <- res{s, err}
	}()
	go func() {
		_, err := sh.errs.until([]byte("\n"+b), stderr.write)
		errc <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why error
	var r res
	select {
	case r = <-outc:
	case <-timer.C:
		why = fmt.Errorf("timed out after %v", timeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	if why != nil {
		// Kill the running command (every descendant of the shell); the shell
		// then prints the framing and stays usable. If that does not work
		// within a few seconds the shell is dropped.
		kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		kerr := sh.c.killChildren(kctx, sh.pid, sudo)
		select {
		case r = <-outc:
		case <-kctx.Done():
		}
		cancel()
		if r.err == nil && r.status != "" {
			select {
			case <-errc:
				return modules.Result{ExitCode: -1, Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes()}, true, why
			case <-time.After(2 * time.Second):
			}
		}
		if kerr != nil {
			why = fmt.Errorf("%w (killing it: %v)", why, kerr)
		}
		return modules.Result{ExitCode: -1}, false, why
	}
	if r.err != nil {
		return modules.Result{}, false, fmt.Errorf("remote shell: %w%s", r.err, sh.exitReason())
	}
	// The exit status is known; stderr's frame follows at once unless the
	// stream is stuck. Never wait on it forever: keep the result, drop the shell.
	keep := true
	select {
	case err := <-errc:
		if err != nil {
			return modules.Result{}, false, fmt.Errorf("remote shell: %w", err)
		}
	case <-time.After(stderrGrace):
		keep = false
	}
	code, err := strconv.Atoi(r.status)
	if err != nil {
		return modules.Result{}, false, fmt.Errorf("remote shell: bad status %q", r.status)
	}
	result := modules.Result{ExitCode: code, Stdout: stdout.buf.Bytes(), Truncated: stdout.truncated}
	if keep { // otherwise the stderr reader may still be writing its buffer
		result.Stderr, result.Truncated = stderr.buf.Bytes(), result.Truncated || stderr.truncated
	}
	return result, keep, nil
}

// stderrGrace bounds the wait for stderr's frame once the exit status came.
const stderrGrace = 10 * time.Second

// killChildren kills every descendant of the shell pid, stopping each
// process before killing its children so none can escape by forking.
func (c *conn) killChildren(ctx context.Context, pid int, sudo bool) error {
	return c.killTree(ctx, pid, false, sudo)
}

// killTree kills pid's descendants, and pid itself when self is set.
func (c *conn) killTree(ctx context.Context, pid int, self, sudo bool) error {
	k := fmt.Sprintf(`kt() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do kt "$c"; done; kill -KILL "$1" 2>/dev/null; }; for c in $(pgrep -P %d); do kt "$c"; done; true`, pid)
	if self {
		k = fmt.Sprintf("kt %d; true", pid)
		k = `kt() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do kt "$c"; done; kill -KILL "$1" 2>/dev/null; }; ` + k
	}
	w := wrap(k, sudo, c.sudoPassword)
	sess, err := c.newSession(ctx)
	if err != nil {
		return err
	}
	defer c.release()
	defer sess.Close()
	sess.Stdin = strings.NewReader(w.stdin)
	done := make(chan error, 1)
	go func() { done <- sess.Run(w.line) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stream reads one output stream of a shell across commands.
type stream struct {
	r   io.Reader
	buf []byte
	tmp [32 << 10]byte
}

// until passes everything before marker to emit and returns the rest of
// the marker's line. Bytes that might begin the marker are held back.
func (s *stream) until(marker []byte, emit func([]byte)) (string, error) {
	for {
		if i := bytes.Index(s.buf, marker); i >= 0 {
			emit(s.buf[:i])
			s.buf = s.buf[i:]
			if j := bytes.IndexByte(s.buf[len(marker):], '\n'); j >= 0 {
				line := string(s.buf[len(marker) : len(marker)+j])
				s.buf = append(s.buf[:0], s.buf[len(marker)+j+1:]...)
				return line, nil
			}
		} else if keep := len(marker) - 1; len(s.buf) > keep {
			emit(s.buf[:len(s.buf)-keep])
			s.buf = append(s.buf[:0], s.buf[len(s.buf)-keep:]...)
		}
		n, err := s.r.Read(s.tmp[:])
		s.buf = append(s.buf, s.tmp[:n]...)
		if err != nil && n == 0 {
			if err == io.EOF {
				err = errors.New("the remote shell exited")
			}
			return "", err
		}
	}
}

// ---------------------------------------------------------------------------
// Commands

// Run runs a command. Commands without stdin go through the host's
// long-lived shell; a command with Stdin gets a session of its own.
func (t *Target) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return t.run(ctx, "run", cmd)
}

// Probe runs a read-only command (same path as Run).
func (t *Target) Probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return t.run(ctx, "probe", cmd)
}

func (t *Target) run(ctx context.Context, op string, cmd modules.Command) (modules.Result, error) {
	scr, err := script(cmd)
	if err != nil {
		return modules.Result{}, t.errf(op, err)
	}
	sudo := t.cfg.Sudo || cmd.Sudo
	timeout := cmd.Timeout
	if timeout <= 0 {
		timeout = t.pool.opts.CommandTimeout
	}
	// The command stays out of the error: it may hold a secret, and the
	// caller says what it was doing in words of its own.
	if cmd.TTY {
		return t.runTTY(ctx, op, cmd, scr, sudo, timeout)
	}
	var res modules.Result
	err = t.do(ctx, op, false, func(c *conn) error {
		if cmd.Stdin != nil {
			var err error
			res, err = c.runSession(ctx, cmd, wrap(scr, sudo, t.cfg.SudoPassword), sudo, false, timeout)
			return err
		}
		for attempt := 0; ; attempt++ {
			sh, err := c.getShell(ctx)
			if err != nil {
				return err
			}
			r, ok, err := sh.run(ctx, cmd, shellText(scr, sudo, t.cfg.SudoPassword), sudo, timeout)
			if ok {
				c.putShell(sh)
			} else {
				c.dropShell(sh)
			}
			// An idle shell that died (killed, or exited) is replaced once.
			if err != nil && errors.Is(err, errNotStarted) && c.alive() && attempt == 0 {
				continue
			}
			res = r
			return err
		}
	})
	return res, err
}

// runSession runs one command in a session of its own (stdin given).
// A tty session has one output stream; the terminal is plain (no echo of
// what is typed, no \r added before \n).
var ttyModes = ssh.TerminalModes{ssh.ECHO: 0, ssh.ONLCR: 0, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}

func (c *conn) runSession(ctx context.Context, cmd modules.Command, w wrapped, sudo, tty bool, timeout time.Duration) (modules.Result, error) {
	sess, err := c.newSession(ctx)
	if err != nil {
		return modules.Result{}, err
	}
	defer c.release()
	defer sess.Close()
	var stdout, stderr output
	stdout.w, stderr.w = cmd.Stdout, cmd.Stderr
	in := io.Reader(strings.NewReader(w.stdin))
	if cmd.Stdin != nil {
		in = io.MultiReader(in, cmd.Stdin)
	}
	sess.Stdin = in
	// The remote shell first reports its pid on stderr (stdout on a tty), so
	// that a timeout can kill the command's whole process tree (a signal
	// reaches only the shell).
	pidc := make(chan int, 1)
	var head []byte
	gotPid := false
	pidThen := func(o *output) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			n := len(p)
			if !gotPid {
				head = append(head, p...)
				i := bytes.IndexByte(head, '\n')
				if i < 0 {
					return n, nil
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(head[:i])))
				pidc <- pid
				gotPid = true
				p = head[i+1:]
			}
			o.write(p)
			return n, nil
		})
	}
	sess.Stdout = writerFunc(func(p []byte) (int, error) { stdout.write(p); return len(p), nil })
	sess.Stderr = pidThen(&stderr)
	start := "echo $$ >&2; "
	if tty {
		if err := sess.RequestPty("xterm", 40, 200, ttyModes); err != nil {
			return modules.Result{}, notStarted{fmt.Errorf("pty: %w", err)}
		}
		sess.Stdout, sess.Stderr = pidThen(&stdout), io.Discard
		start = "echo $$; "
	}
	if err := sess.Start(start + w.line); err != nil {
		return modules.Result{}, notStarted{err}
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why error
	select {
	case err = <-done:
	case <-timer.C:
		why = fmt.Errorf("timed out after %v", timeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	if why != nil {
		kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		select {
		case pid := <-pidc:
			if pid > 0 {
				c.killTree(kctx, pid, true, sudo)
			}
		default:
		}
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		select {
		case <-done: // output copied: safe to read
			return modules.Result{ExitCode: -1, Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes()}, why
		case <-kctx.Done():
			return modules.Result{ExitCode: -1}, why
		}
	}
	res := modules.Result{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(), Truncated: stdout.truncated || stderr.truncated}
	var ee *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitStatus()
		if ee.Signal() != "" {
			res.ExitCode = 128 + signalNumber(ee.Signal())
		}
	default:
		return res, err
	}
	return res, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func signalNumber(s string) int {
	switch s {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "KILL":
		return 9
	case "PIPE":
		return 13
	case "TERM":
		return 15
	}
	return 0
}
