package ssh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
)

// TestTarget_errorsHoldNoCommand: a failing command's error says what
// failed (host, op, why) but never holds the command text, which may carry
// a secret; a secret past the 80th character once leaked cut in half.
func TestTarget_errorsHoldNoCommand(t *testing.T) {
	const canary = "C4NARY-transport-secret"
	bed := testbed.New(t, "e")
	h := bed.Host("e")
	tgt, err := pool(t, ssh.Options{}).Target(ctx(t), "e", h.SSHConfig())
	if err != nil {
		t.Fatal(err)
	}
	long := "true " + strings.Repeat("x", 70) + " " + canary
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if strings.Contains(err.Error(), "C4NARY") || strings.Contains(err.Error(), "xxxxxxxx") {
			t.Errorf("%s: the error holds the command: %v", what, err)
		}
		if !strings.Contains(err.Error(), `host "e"`) {
			t.Errorf("%s: the error does not name the host: %v", what, err)
		}
	}
	// a timeout: the shell stays, the command is killed
	_, err = tgt.Run(ctx(t), modules.Command{Cmd: "sleep 30; " + long, Timeout: 300 * time.Millisecond})
	check("timeout", err)
	// with stdin: a session of its own
	_, err = tgt.Run(ctx(t), modules.Command{Cmd: "sleep 30; " + long, Stdin: strings.NewReader("x"), Timeout: 300 * time.Millisecond})
	check("timeout with stdin", err)
	// cancelled
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	_, err = tgt.Probe(c, modules.Command{Cmd: long})
	check("cancelled", err)
	// the host gone
	if err := h.StopSSH(ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.StartSSH(context.Background()) })
	_, err = tgt.Run(ctx(t), modules.Command{Cmd: long})
	check("no sshd", err)
}
