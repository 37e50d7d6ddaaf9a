// Command transport measures upgrader's SSH transport against running test
// hosts (cmd/testbed up); bench/transport/run.sh runs it side by side with
// OpenSSH. It prints one number: the median wall time in seconds.
//
//	go run ./bench/transport -state DIR -mode cmds -hosts 4 -n 100 -reps 5
//	go run ./bench/transport -state DIR -mode upload -hosts 4 -file F -reps 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
)

func main() {
	state := flag.String("state", "", "testbed state directory (cmd/testbed up -state)")
	mode := flag.String("mode", "cmds", "cmds: N short commands per host; upload: FILE to every host")
	hosts := flag.Int("hosts", 1, "number of hosts, at once")
	n := flag.Int("n", 100, "commands per host")
	cmd := flag.String("cmd", "stat -c %s /etc/passwd", "the short command")
	file := flag.String("file", "", "file to upload (mode upload)")
	dest := flag.String("dest", "/tmp/bench-upload", "remote path (mode upload)")
	reps := flag.Int("reps", 5, "repetitions (the median is printed)")
	flag.Parse()
	if err := run(*state, *mode, *hosts, *n, *cmd, *file, *dest, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "transport:", err)
		os.Exit(1)
	}
}

func run(state, mode string, nhosts, n int, cmd, file, dest string, reps int) error {
	bed, err := testbed.Load(state)
	if err != nil {
		return err
	}
	hs := bed.Hosts()
	if nhosts > len(hs) {
		return fmt.Errorf("%d hosts wanted, the testbed has %d", nhosts, len(hs))
	}
	hs = hs[:nhosts]
	ctx := context.Background()
	pool := ssh.NewPool(ssh.Options{})
	defer pool.Close()
	var ts []modules.Target
	for _, h := range hs {
		t, err := pool.Target(ctx, h.Name, h.SSHConfig())
		if err != nil {
			return err
		}
		// Connected, shell started: like the ControlMaster loop, whose master
		// connection is up before the clock starts.
		if _, err := t.Run(ctx, modules.Command{Cmd: "true"}); err != nil {
			return err
		}
		ts = append(ts, t)
	}
	one := func(t modules.Target) error {
		switch mode {
		case "cmds":
			for i := 0; i < n; i++ {
				r, err := t.Run(ctx, modules.Command{Cmd: cmd})
				if err != nil {
					return err
				}
				if r.ExitCode != 0 {
					return fmt.Errorf("%q: exit %d: %s", cmd, r.ExitCode, r.Stderr)
				}
			}
			return nil
		case "upload":
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			return t.WriteFile(ctx, dest, f, 0o644)
		}
		return fmt.Errorf("unknown mode %q", mode)
	}
	var times []float64
	for range reps {
		start := time.Now()
		errs := make([]error, len(ts))
		var wg sync.WaitGroup
		for i, t := range ts {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = one(t) }()
		}
		wg.Wait()
		d := time.Since(start).Seconds()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		times = append(times, d)
	}
	sort.Float64s(times)
	fmt.Printf("%.4f\n", times[len(times)/2])
	return nil
}
