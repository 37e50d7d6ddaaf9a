package main

import (
	"io"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
)

func init() {
	register("rollback", "undo a finished or failed run, newest first", runRollback)
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rollback", stderr)
	var c common
	c.register(fs)
	stateDir, run, ok := runTarget("rollback", fs, &c, args, stderr)
	if !ok {
		return exitInvalid
	}
	_, _, opts, ok := loadForRun(&c, stateDir, run, stdout, stderr)
	if !ok {
		return exitInvalid
	}
	ctx, stop := signalContext()
	defer stop()
	hosts := newHosts()
	defer hosts.Close()
	opts.Hosts = hosts
	st := views.NewStyle(fileOf(stdout), c.noColor)
	code := executeRun(ctx, stdout, stderr, &c, st, false, stateDir, func(o executor.Options) (*executor.Summary, error) {
		return executor.Rollback(ctx, o, run)
	}, opts)
	if code == exitFailedRolledBack {
		return exitOK // the rollback asked for is done (3 still says it is not)
	}
	return code
}
