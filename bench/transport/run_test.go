package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

// TestRunQuick runs the benchmark script in --quick mode so it cannot rot
// (CI sets the variable; it takes about 40 s, too long for every go test):
//
//	UPGRADER_BENCH_QUICK=1 go test -run TestRunQuick ./bench/transport/
func TestRunQuick(t *testing.T) {
	if os.Getenv("UPGRADER_BENCH_QUICK") != "1" {
		t.Skip("set UPGRADER_BENCH_QUICK=1 to run bench/transport/run.sh --quick (~40s)")
	}
	testbed.Require(t)
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("no OpenSSH sftp client")
	}
	cmd := exec.Command("bash", "run.sh", "--quick")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run.sh --quick: %v\n%s", err, out)
	}
	for _, want := range []string{"## Transport", "| 1 host |", "| 4 hosts at once |", "MB/s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}
