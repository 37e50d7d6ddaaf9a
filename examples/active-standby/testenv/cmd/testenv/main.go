// Command testenv starts and stops the example's test hosts from a shell
// (scripts/example.sh):
//
//	testenv up -dir DIR -upgrader BIN [-dist DIST]
//	testenv down -dir DIR
//
// `up` starts hosts primary, standby, test, lb and db, PostgreSQL on db,
// copies the example to DIR/active-standby with hosts.hcl, writes
// DIR/testenv.vars.hcl and runs the bootstrap (v1 in production).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/upgrader-dev/upgrader/examples/active-standby/testenv"
	"github.com/upgrader-dev/upgrader/internal/testbed"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: testenv up|down -dir DIR [-upgrader BIN] [-dist DIST]")
	}
	fs := flag.NewFlagSet("testenv "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", ".testenv", "working directory")
	upgrader := fs.String("upgrader", "upgrader", "the upgrader binary (runs the bootstrap)")
	dist := fs.String("dist", "", "release tarballs (default: the example's dist/)")
	example := fs.String("example", "examples/active-standby", "the example directory")
	noBootstrap := fs.Bool("no-bootstrap", false, "do not install v1 (leave the hosts empty)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if why := testbed.Missing(); why != "" {
			return fmt.Errorf("%s", why)
		}
		if _, err := os.Stat(filepath.Join(*dir, "testenv.json")); err == nil {
			return fmt.Errorf("already up in %s (run: testenv down -dir %s)", *dir, *dir)
		}
		if *dist == "" {
			*dist = filepath.Join(*example, "dist")
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return err
		}
		ctx := context.Background()
		env, err := testenv.Start(ctx, testenv.Options{ExampleDir: *example, Dist: *dist, WorkDir: abs, Persistent: true})
		if err != nil {
			return err
		}
		for _, h := range env.Bed.Hosts() {
			fmt.Printf("host %-8s %s\n", h.Name, h.Address)
		}
		if *noBootstrap {
			fmt.Printf("\nconfiguration: %s\nvariables:     %s\n", env.Dir, env.VarFile)
			return nil
		}
		fmt.Printf("\nInstalling v1 in production (upgrader apply %s):\n", filepath.Join(env.Dir, "bootstrap"))
		if err := env.Bootstrap(ctx, *upgrader, os.Stdout); err != nil {
			testenv.Down(abs)
			return err
		}
		fmt.Printf("\nconfiguration: %s\nvariables:     %s\n", env.Dir, env.VarFile)
		return nil
	case "down":
		return testenv.Down(*dir)
	}
	return fmt.Errorf("unknown command %q (want up or down)", args[0])
}
