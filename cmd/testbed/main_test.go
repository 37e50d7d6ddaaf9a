package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

// up leaves reachable hosts behind; env describes them; down removes them.
func TestTestbed_upEnvDown(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"up", "-names", "primary,lb", "-state", dir}, &out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run([]string{"down", "-state", dir}, &bytes.Buffer{}) })
	if err := run([]string{"up", "-n", "1", "-state", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Fatalf("second up: %v", err)
	}
	var env bytes.Buffer
	if err := run([]string{"env", "-state", dir}, &env); err != nil {
		t.Fatal(err)
	}
	// The env works from a shell, with OpenSSH.
	script := env.String() + `ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$TESTBED_KNOWN_HOSTS -i $TESTBED_KEY $TESTBED_USER@$TESTBED_LB_ADDRESS 'echo $USER'`
	got, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil || string(got) != "deploy\n" {
		t.Fatalf("ssh with the env: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts.hcl")); err != nil {
		t.Fatal(err)
	}
	b, err := testbed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns := b.Host("primary").NetNS
	if err := run([]string{"down", "-state", dir}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + ns); err == nil {
		t.Fatalf("namespace %s left after down", ns)
	}
	if err := run([]string{"env", "-state", dir}, &bytes.Buffer{}); err == nil {
		t.Fatal("env after down should fail")
	}
}
