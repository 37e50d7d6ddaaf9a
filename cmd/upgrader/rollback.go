package main

import (
	"context"
	"io"

	"github.com/upgrader-dev/upgrader/executor"
)

func init() {
	register("rollback", "undo a finished or failed run, newest first", runRollback)
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rollback", stderr)
	var c common
	c.register(fs)
	force := fs.Bool("force", false, "roll back although sensitive variables are missing or differ from the values the run started with")
	code := continueRun("rollback", fs, &c, args, stdout, stderr, false, func(ctx context.Context, o executor.Options, run string) (*executor.Summary, error) {
		o.Force = *force
		return executor.Rollback(ctx, o, run)
	})
	if code == exitFailedRolledBack {
		return exitOK // the rollback asked for is done (3 still says it is not)
	}
	return code
}
