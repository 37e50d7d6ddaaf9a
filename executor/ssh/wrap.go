package ssh

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
)

// Secrets never reach a remote argv, which every local user of the host can
// read in ps or /proc/PID/cmdline. A command's script (its environment
// exports, then the command) reaches the host only on a stdin:
//
//   - a command without stdin or sudo: the long-lived shell reads it on its
//     stdin and evals it;
//   - otherwise a fixed reader program (`[sudo ...] sh -c READER`) reads its
//     stdin: the sudo password line when one is set (consumed by `sudo -S`,
//     skipped by the reader when sudo did not ask), a random mark, the
//     script, the mark again. On the shell path that stdin is a here-document
//     written on the shell's stdin; a command with its own stdin gets its
//     session's stdin with the frame in front of the data; a tty command
//     (runTTY) a 0600 file.
//
// Only the reader program, which holds no value, is in argv.

// script is the shell text of cmd: environment exports, then the command.
func script(cmd modules.Command) (string, error) {
	var sb strings.Builder
	keys := make([]string, 0, len(cmd.Env))
	for k := range cmd.Env {
		if !envName.MatchString(k) {
			return "", fmt.Errorf("bad environment variable name %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "export %s=%s; ", k, modules.ShellQuote(cmd.Env[k]))
	}
	sb.WriteString(cmd.Cmd)
	return sb.String(), nil
}

// sudoCmd is the sudo invocation: with a password sudo reads it from stdin
// without a prompt (-S -p ”), otherwise it fails instead of asking (-n).
func sudoCmd(password string) string {
	if password != "" {
		return "sudo -S -p '' -- "
	}
	return "sudo -n -- "
}

// reader is the program that reads a framed script on stdin (see framed) and
// evals it after redir ("" keeps the rest of stdin for the script). A frame
// cut short runs nothing: a truncated script could do harm.
func reader(mark, redir string) string {
	return `while IFS= read -r __ug_l; do [ "$__ug_l" = ` + mark + ` ] && break; done; __ug_s=; __ug_ok=; ` +
		`while IFS= read -r __ug_l; do if [ "$__ug_l" = ` + mark + ` ]; then __ug_ok=1; break; fi; __ug_s="$__ug_s$__ug_l
"; done; [ "$__ug_ok" = 1 ] || { echo 'upgrader: the command script arrived incomplete: nothing was run' >&2; exit 125; }; ` +
		redir + `unset __ug_l __ug_ok; eval "$__ug_s"`
}

// framed is the stdin of a reader: the sudo password line (when set), the
// mark, the script, the mark.
func framed(password, mark, script string) string {
	var b strings.Builder
	if password != "" {
		b.WriteString(password + "\n")
	}
	b.WriteString(mark + "\n" + script + "\n" + mark + "\n")
	return b.String()
}

// wrapped is how to start a script: the command line (no value in it) and
// the bytes to send on its stdin first.
type wrapped struct {
	line  string
	stdin string
}

// wrap wraps script for a session of its own: the reader, through sudo when
// asked; the script's stdin is what follows the frame.
func wrap(script string, sudo bool, password string) wrapped {
	m := boundary()
	if !sudo {
		return wrapped{line: "/bin/sh -c " + modules.ShellQuote(reader(m, "")), stdin: framed("", m, script)}
	}
	return wrapped{line: sudoCmd(password) + "/bin/sh -c " + modules.ShellQuote(reader(m, "")), stdin: framed(password, m, script)}
}

// shellText is the text the long-lived shell evals for script (stdin
// /dev/null): the script itself, or through sudo the reader with its frame
// as a here-document.
func shellText(script string, sudo bool, password string) string {
	if !sudo {
		return script
	}
	m, h := boundary(), boundary()
	return sudoCmd(password) + "/bin/sh -c " + modules.ShellQuote(reader(m, "exec </dev/null; ")) +
		" <<'" + h + "'\n" + framed(password, m, script) + h + "\n"
}

// runTTY runs a command on a pseudo-terminal. Whatever is typed on a
// terminal may be echoed, so the framed script (and sudo password) goes
// through a 0600 mktemp file written by the long-lived shell: the session
// opens it as the reader's stdin and removes it before anything runs; the
// reader then gives the script the terminal back as stdin.
func (t *Target) runTTY(ctx context.Context, op string, cmd modules.Command, scr string, sudo bool, timeout time.Duration) (modules.Result, error) {
	m, h := boundary(), boundary()
	password := ""
	if sudo {
		password = t.cfg.SudoPassword
	}
	stage := "umask 077; f=$(mktemp) && cat > \"$f\" <<'" + h + "'\n" + framed(password, m, scr) + h + "\necho \"$f\""
	res, err := t.run(ctx, op, modules.Command{Cmd: stage})
	if err != nil {
		return modules.Result{}, err
	}
	file := strings.TrimSpace(string(res.Stdout))
	if res.ExitCode != 0 || !strings.HasPrefix(file, "/") {
		return modules.Result{}, t.errf(op, fmt.Errorf("staging the script: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr))))
	}
	q := modules.ShellQuote(file)
	// stdout is the terminal (opened read-write by sshd, or by sudo's
	// use_pty): as stdin it keeps its /dev/pts name, which tty(1) prints.
	prog := "/bin/sh -c " + modules.ShellQuote(reader(m, "if [ -t 1 ]; then exec <&1; else exec </dev/tty; fi; "))
	if sudo {
		prog = sudoCmd(password) + prog
	}
	w := wrapped{line: "{ rm -f -- " + q + "; " + prog + "; } < " + q}
	err = t.do(ctx, op, false, func(c *conn) error {
		var err error
		res, err = c.runSession(ctx, cmd, w, sudo, true, timeout)
		return err
	})
	if err != nil {
		// The session may not have started: never leave the script behind.
		t.run(context.WithoutCancel(ctx), "cleanup", modules.Command{Cmd: "rm -f -- " + q})
	}
	return res, err
}
