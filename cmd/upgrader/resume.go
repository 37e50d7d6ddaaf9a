package main

import (
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
	stateDir, run, ok := runTarget("resume", fs, &c, args, stderr)
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
	tty := views.IsTerminal(os.Stdin) && views.IsTerminal(fileOf(stdout))
	return executeRun(ctx, stdout, stderr, &c, st, tty && !c.json, stateDir, func(o executor.Options) (*executor.Summary, error) {
		return executor.Resume(ctx, o, run, executor.ResumeOptions{Retry: *retry, Force: *force})
	}, opts)
}
