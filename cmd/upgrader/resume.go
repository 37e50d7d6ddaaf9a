package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
)

func init() {
	register("resume", "continue an interrupted run from its journal", runResume)
}

func runResume(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("resume", stderr)
	var c common
	c.register(fs)
	retry := fs.String("retry", "", "repeat NODE, which was in flight and is not known to be safe to repeat")
	force := fs.Bool("force", false, "resume although the configuration changed since the run started")
	return continueRun("resume", fs, &c, args, stdout, stderr, true, func(ctx context.Context, o executor.Options, run string) (*executor.Summary, error) {
		return executor.Resume(ctx, o, run, executor.ResumeOptions{Retry: *retry, Force: *force})
	})
}

// continueRun is what resume and rollback share: find the run, load its
// configuration, connect, and carry out do with the live view. interactive
// allows the terminal view (and gates answered on it).
func continueRun(name string, fs *flag.FlagSet, c *common, args []string, stdout, stderr io.Writer, interactive bool,
	do func(ctx context.Context, o executor.Options, run string) (*executor.Summary, error)) int {
	ref, ok := runTarget(name, fs, c, args, stderr)
	if !ok {
		return exitInvalid
	}
	defer ref.store.Close()
	stateDir, run := ref.stateDir, ref.run
	_, _, opts, ok := loadForRun(c, ref, stdout, stderr)
	if !ok {
		return exitInvalid
	}
	ctx, stop := signalContext()
	defer stop()
	hosts := newHosts()
	defer hosts.Close()
	opts.Hosts = hosts
	st := views.NewStyle(fileOf(stdout), c.noColor)
	tty := interactive && views.IsTerminal(os.Stdin) && views.IsTerminal(fileOf(stdout)) && !c.json
	return executeRun(ctx, stdout, stderr, c, st, tty, stateDir, nil, func(o executor.Options) (*executor.Summary, error) {
		return do(ctx, o, run)
	}, opts)
}
