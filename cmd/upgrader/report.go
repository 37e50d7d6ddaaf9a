package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/report"
)

func init() {
	register("report", "write a run's HTML report: report [DIR] [RUN] [-o FILE]", runReport)
}

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", stderr)
	var c common
	c.register(fs)
	out := fs.String("o", "", "write the report to FILE (default .upgrader/runs/RUN/report.html; - for stdout)")
	ref, ok := runTarget("report", fs, &c, args, stderr)
	if !ok {
		return exitInvalid
	}
	ref.store.Close()
	if ref.shared() {
		fmt.Fprintln(stderr, "upgrader report: reports of runs kept in a postgres state store are not supported yet")
		return exitInvalid
	}
	stateDir, run := ref.stateDir, ref.run
	// The configuration names the sensitive variables and the nodes not
	// started yet; the report works without it.
	var cfg *lang.Config
	if rs, err := executor.Replay(stateDir, run); err == nil && rs.Dir != "" {
		if cf, _, ok := loadRunConfig(rs.Dir, &c, append(rs.VarArgs, c.vars...), append(rs.VarFiles, c.varFiles...), false, io.Discard); ok {
			cfg = cf
		}
	}
	in := report.Input{StateDir: stateDir, Run: run, Config: cfg}
	if *out == "-" {
		rep, err := report.Build(in)
		if err == nil {
			err = rep.HTML(stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "upgrader report: %s\n", err)
			return exitInvalid
		}
		return exitOK
	}
	path, err := report.Write(in, *out)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader report: %s\n", err)
		return exitInvalid
	}
	if c.json {
		fmt.Fprintf(stdout, "{\"type\":\"report\",\"run\":%q,\"path\":%q}\n", run, path)
	} else {
		fmt.Fprintf(stdout, "Report of run %s: %s\n", run, path)
	}
	return exitOK
}

// runReporter writes runs/RUN/report.html while a run goes on: when a
// rollback starts (in the background, so the rollback does not wait) and
// when the run ends; and keeps the applied plan beside the journal.
type runReporter struct {
	stateDir string
	cfg      *lang.Config
	plan     *executor.Plan // apply's plan, kept as runs/RUN/plan.json

	mu  sync.Mutex
	run string
	wg  sync.WaitGroup
	w   sync.Mutex // one report write at a time
	err error
}

// observe wraps a view's observer.
func (rr *runReporter) observe(next func(executor.Event)) func(executor.Event) {
	return func(ev executor.Event) {
		next(ev)
		switch ev.Type {
		case "run_started", "run_resumed":
			rr.mu.Lock()
			rr.run = ev.Run
			rr.mu.Unlock()
			if ev.Type == "run_started" && rr.plan != nil {
				if err := report.WritePlan(rr.stateDir, ev.Run, rr.plan); err != nil {
					rr.setErr(err)
				}
			}
		case executor.EvRollbackStarted:
			rr.wg.Add(1)
			go func() {
				defer rr.wg.Done()
				rr.write()
			}()
		}
	}
}

func (rr *runReporter) setErr(err error) {
	rr.mu.Lock()
	if rr.err == nil {
		rr.err = err
	}
	rr.mu.Unlock()
}

func (rr *runReporter) write() string {
	rr.mu.Lock()
	run := rr.run
	rr.mu.Unlock()
	if run == "" {
		return ""
	}
	rr.w.Lock()
	defer rr.w.Unlock()
	path, err := report.Write(report.Input{StateDir: rr.stateDir, Run: run, Config: rr.cfg}, "")
	if err != nil {
		rr.setErr(err)
		return ""
	}
	return path
}

// finish writes the final report once the run has ended.
func (rr *runReporter) finish() (string, error) {
	rr.wg.Wait()
	path := rr.write()
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return path, rr.err
}
