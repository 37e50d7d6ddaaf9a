package testbed

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Missing says why test hosts cannot run here ("" when they can).
func Missing() string {
	if os.Geteuid() != 0 {
		return "test hosts need root (network namespaces)"
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return "test hosts need /usr/sbin/sshd (Debian package openssh-server)"
	}
	for _, tool := range []string{"ip", "unshare", "nsenter", "useradd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "test hosts need " + tool
		}
	}
	return ""
}

// Require skips the test when test hosts cannot run here; under CI=true it
// fails instead, so that CI never silently skips the real-host tests.
func Require(t testing.TB) {
	t.Helper()
	why := Missing()
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("testbed: %s (CI=true: not skipping)", why)
	}
	t.Skip("testbed: " + why)
}

// New calls Require, starts hosts with the given names and closes them when
// the test ends (also when it fails or panics).
func New(t testing.TB, names ...string) *Testbed {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Start(ctx, Options{Hosts: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("testbed close: %v", err)
		}
	})
	return b
}
