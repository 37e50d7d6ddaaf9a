// Package e2e runs examples/active-standby end to end: the real upgrader
// binary against real test hosts (sshd in network namespaces), real nginx
// and a real PostgreSQL, one fresh world per scenario, scenarios in parallel.
//
// It needs root (internal/testbed); without it every test skips, except
// under CI=true, where they fail.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

// FaultAfter is how long the faulty "errors" build behaves before it starts
// logging ERROR lines: longer than the standby's short window in scenario 4,
// shorter than its long window in scenario 3.
const FaultAfter = 30 * time.Second

var (
	upgraderBin string // built once in TestMain
	distDir     string // the example's release tarballs, built once
	exampleDir  = "../examples/active-standby"
	setupErr    error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testbed.Missing() != "" || testing.Short() {
		return m.Run() // every test calls need(t), which skips or fails with the reason
	}
	tmp, err := os.MkdirTemp("", "upgrader-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	upgraderBin = filepath.Join(tmp, "upgrader")
	distDir = filepath.Join(tmp, "dist")
	start := time.Now()
	if out, err := exec.Command("go", "build", "-o", upgraderBin, "../cmd/upgrader").CombinedOutput(); err != nil {
		setupErr = fmt.Errorf("building upgrader: %v\n%s", err, out)
	} else {
		build := exec.Command("bash", filepath.Join(exampleDir, "build.sh"), distDir)
		build.Env = append(os.Environ(), "FAULT_AFTER="+FaultAfter.String())
		if out, err := build.CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("building the example's releases: %v\n%s", err, out)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: built upgrader and the releases in %v\n", time.Since(start).Round(time.Second))
	return m.Run()
}

// need skips (or, under CI, fails) without root and sshd, and fails when
// the shared build failed.
func need(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	testbed.Require(t)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}
