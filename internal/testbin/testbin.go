// Package testbin builds the upgrader binary once per test process, for the
// tests that need a process of their own (kill -9 and resume, -detach, the
// CLI benchmarks). Tests only.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
)

// Upgrader returns the path of a freshly built upgrader binary.
func Upgrader(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, e := os.MkdirTemp("", "upgrader-bin-")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "upgrader")
		out, e := exec.Command("go", "build", "-o", path, "github.com/upgrader-dev/upgrader/cmd/upgrader").CombinedOutput()
		if e != nil {
			err = fmt.Errorf("go build ./cmd/upgrader: %v\n%s", e, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Main runs the tests, then removes the binary: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if path != "" {
		os.RemoveAll(filepath.Dir(path))
	}
	os.Exit(code)
}
