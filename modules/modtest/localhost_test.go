package modtest

import (
	"os"
	"testing"

	"github.com/upgrader-dev/upgrader/executor/ssh/targettest"
)

// LocalHost is held to the same suite as the SSH target.
func TestLocalHost_suite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the suite looks at files as root (and as nobody)")
	}
	h := NewLocalHost("local")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Sudo: false: already root, so the suite's "not root without sudo" cannot hold.
	targettest.Run(t, targettest.Host{Target: h, Exec: h.Exec, Dir: dir})
}
