// Command testbed starts and stops upgrader's test hosts from a shell (the
// README's example and the transport benchmarks use it):
//
//	go run ./cmd/testbed up -n 3 -names primary,standby,lb -state DIR
//	eval "$(go run ./cmd/testbed env -state DIR)"
//	go run ./cmd/testbed down -state DIR
//
// `up` leaves the hosts running (sshd daemonized inside their namespaces) and
// writes DIR/testbed.json, DIR/hosts.hcl and DIR/env; `down` removes them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: testbed up|down|env [-state DIR] [-n N] [-names a,b,c]")
	}
	fs := flag.NewFlagSet("testbed "+args[0], flag.ContinueOnError)
	n := fs.Int("n", 0, "number of hosts (default: the number of -names, else 1)")
	names := fs.String("names", "", "comma-separated host names (default host1..hostN)")
	stateDir := fs.String("state", ".testbed", "directory for the testbed's description, hosts.hcl and env")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx := context.Background()
	switch args[0] {
	case "up":
		var hosts []string
		if *names != "" {
			hosts = strings.Split(*names, ",")
		}
		if *n == 0 {
			*n = max(len(hosts), 1)
		}
		for i := len(hosts); i < *n; i++ {
			hosts = append(hosts, fmt.Sprintf("host%d", i+1))
		}
		if len(hosts) != *n {
			return fmt.Errorf("-n %d but %d names", *n, len(hosts))
		}
		if why := testbed.Missing(); why != "" {
			return fmt.Errorf("%s", why)
		}
		if _, err := os.Stat(filepath.Join(*stateDir, "testbed.json")); err == nil {
			return fmt.Errorf("a testbed is already up in %s (run: testbed down -state %s)", *stateDir, *stateDir)
		}
		if err := os.MkdirAll(*stateDir, 0o755); err != nil {
			return err
		}
		start := time.Now()
		b, err := testbed.Start(ctx, testbed.Options{Hosts: hosts, Persistent: true})
		if err != nil {
			return err
		}
		for _, f := range []func() error{
			func() error { return b.Save(*stateDir) },
			func() error { return b.WriteHostsHCL(filepath.Join(*stateDir, "hosts.hcl")) },
			func() error { return os.WriteFile(filepath.Join(*stateDir, "env"), []byte(envText(b)), 0o644) },
		} {
			if err := f(); err != nil {
				b.Close()
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "testbed: %d hosts up in %v (state %s)\n", len(hosts), time.Since(start).Round(time.Millisecond), *stateDir)
		for _, h := range b.Hosts() {
			fmt.Fprintf(stdout, "%s\t%s\n", h.Name, h.Address)
		}
		return nil
	case "down":
		b, err := testbed.Load(*stateDir)
		if err != nil {
			return err
		}
		err = b.Close()
		for _, f := range []string{"testbed.json", "hosts.hcl", "env"} {
			os.Remove(filepath.Join(*stateDir, f))
		}
		return err
	case "env":
		b, err := testbed.Load(*stateDir)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, envText(b))
		return err
	}
	return fmt.Errorf("unknown command %q (want up, down or env)", args[0])
}

// envText is shell assignments describing the bed.
func envText(b *testbed.Testbed) string {
	var sb strings.Builder
	var names, addrs []string
	for _, h := range b.Hosts() {
		names = append(names, h.Name)
		addrs = append(addrs, h.Address)
		v := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(h.Name))
		fmt.Fprintf(&sb, "export TESTBED_%s_ADDRESS=%s\n", v, h.Address)
	}
	fmt.Fprintf(&sb, "export TESTBED_HOSTS='%s'\nexport TESTBED_ADDRESSES='%s'\nexport TESTBED_USER=deploy\nexport TESTBED_KEY=%s\nexport TESTBED_KNOWN_HOSTS=%s\n",
		strings.Join(names, " "), strings.Join(addrs, " "), b.KeyFile, b.KnownHostsFile)
	return sb.String()
}
