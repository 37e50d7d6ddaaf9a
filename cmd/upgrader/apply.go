package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/notify"
	"github.com/upgrader-dev/upgrader/report"
)

func init() {
	register("apply", "carry out the plan: backups, steps, checks, automatic rollback", runApply)
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("apply", stderr)
	var c common
	c.register(fs)
	autoApprove := fs.Bool("auto-approve", false, "do not ask for confirmation")
	detach := fs.Bool("detach", false, "run in the background; output goes to .upgrader/runs/RUN/output.log")
	runID := fs.String("run-id", "", "use this run id (set by -detach for the background process)")
	varsStdin := fs.Bool("vars-stdin", false, "read the -var values from stdin as JSON (set by -detach: values never in the process list)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	target, err := dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	if *runID != "" && !journal.ValidRunID(*runID) {
		fmt.Fprintf(stderr, "upgrader apply: -run-id %q is not a run id\n", *runID)
		return exitInvalid
	}
	saved, isPlan, err := executor.LoadSavedPlan(target)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	c.varFiles = absPaths(c.varFiles)
	dir, vars, varFiles := target, []string(c.vars), []string(c.varFiles)
	if isPlan {
		// the plan's own variables first; -var on the command line supplies the sensitive ones
		dir, vars, varFiles = saved.Dir, append(append([]string(nil), saved.VarArgs...), c.vars...), append(append([]string(nil), saved.VarFiles...), c.varFiles...)
	}
	if *varsStdin {
		// the parent of -detach resolved them all (the plan's, -var, typed at its prompt)
		if vars, err = readDetachedVars(os.Stdin); err != nil {
			fmt.Fprintf(stderr, "upgrader apply: -vars-stdin: %s\n", err)
			return exitInvalid
		}
	}
	stdin := os.Stdin
	tty := views.IsTerminal(stdin) && views.IsTerminal(fileOf(stdout))
	if isPlan && tty {
		// ask for sensitive values only when the configuration cannot do without them
		if _, ds := lang.Load(dir, executor.Schemas(newRegistry()), lang.Options{Vars: vars, VarFiles: varFiles}); ds.HasErrors() {
			vars = askSensitive(saved, vars, stdout)
		}
	}
	cfg, reg, ok := loadRunConfigOut(dir, &c, vars, varFiles, true, stdout, stderr)
	if !ok {
		return exitInvalid
	}
	stateDir := c.stateDirFor(cfg.Dir)
	store, err := openStore(context.Background(), &c, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	defer store.Close()
	// Refuse early when another run holds the lock (apply takes it for real below).
	if li, stale, err := store.Holder(context.Background()); err == nil && li != nil && li.Run != *runID {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", (&runstore.LockedError{Holder: *li, Stale: stale, What: lockWhat(store)}).Error())
		return exitLocked
	}
	if *runID == "" {
		warnUnfinished(store, stderr)
	}
	st := views.NewStyle(fileOf(stdout), c.noColor)
	ctx, stop := signalContext()
	defer stop()
	hosts := newHosts()
	defer hosts.Close()
	opts := executor.Options{Config: cfg, Registry: reg, StateDir: stateDir, Store: store, Hosts: hosts, Parallelism: c.parallelism,
		Vars: vars, VarFiles: varFiles, Version: version, RunID: *runID}

	var plan *executor.Plan
	if *runID == "" { // the background half of -detach skips the plan: its parent showed it
		p, err := executor.MakePlan(ctx, opts)
		if err != nil {
			fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
			return exitInvalid
		}
		if c.json {
			_ = views.PlanJSON(stdout, p)
		} else {
			views.Plan(stdout, p, st)
		}
		if len(p.Errors) > 0 {
			fmt.Fprintln(stderr, "upgrader apply: some hosts could not be probed; nothing was changed")
			return exitFailedRolledBack
		}
		if isPlan {
			if diffs := saved.Stale(p); len(diffs) > 0 {
				fmt.Fprintf(stderr, "upgrader apply: the saved plan %s is stale; nothing was changed. What differs since it was made:\n", target)
				for _, d := range diffs {
					fmt.Fprintf(stderr, "  - %s\n", d)
				}
				fmt.Fprintln(stderr, "Make a new plan with `upgrader plan -out FILE`.")
				return exitInvalid
			}
		}
		if !*autoApprove && !isPlan {
			if !tty {
				fmt.Fprintln(stderr, "upgrader apply: not on a terminal, so the plan cannot be confirmed; review it with `upgrader plan` and run `upgrader apply -auto-approve` (or apply a saved plan)")
				return exitInvalid
			}
			fmt.Fprint(stdout, "\nDo you want to apply this plan? Only 'yes' is accepted: ")
			ans, _ := stdinLines.next(ctx)
			if ans != "yes" {
				fmt.Fprintln(stdout, "Apply cancelled; nothing was changed.")
				return exitFailedRolledBack
			}
		}
		if *detach {
			return detachApply(args, vars, stateDir, p, stdout, stderr)
		}
		plan = p
	}
	return executeRun(ctx, stdout, stderr, &c, st, tty && !c.json, stateDir, plan, func(o executor.Options) (*executor.Summary, error) {
		return executor.Apply(ctx, o)
	}, opts)
}

// warnUnfinished tells when the newest run of the state directory never
// finished: a new apply starts from the hosts as that run left them.
func warnUnfinished(store runstore.Store, stderr io.Writer) {
	last, err := runstore.Latest(context.Background(), store)
	if err != nil {
		return
	}
	if rs, err := executor.ReplayFrom(context.Background(), store, last); err == nil && rs.Outcome == "" {
		fmt.Fprintf(stderr, "upgrader apply: warning: run %s did not finish; `upgrader resume %s` continues it, `upgrader rollback %s` undoes it\n", last, last, last)
	}
}

// executeRun runs apply, resume or rollback with the live view and maps the result to an exit code.
// plan, for apply, is kept beside the journal for the report.
func executeRun(ctx context.Context, stdout, stderr io.Writer, c *common, st views.Style, tty bool, stateDir string, plan *executor.Plan,
	do func(executor.Options) (*executor.Summary, error), opts executor.Options) int {
	var live *views.Live
	if c.json {
		opts.Observer = views.JSONEvents(stdout)
	} else {
		live = views.NewLive(stdout, st, tty)
		opts.Observer = live.Event
	}
	rep := &runReporter{stateDir: stateDir, cfg: opts.Config, plan: plan}
	_, local := opts.Store.(*runstore.Local)
	local = local || opts.Store == nil
	if local { // the report reads the local journal; a shared run has none (not supported yet)
		opts.Observer = rep.observe(opts.Observer)
	}
	// Notifications go out from this process, never holding the run up.
	if nt := notify.New(notify.Options{StateDir: stateDir, Config: opts.Config}); nt != nil {
		view := opts.Observer
		opts.Observer = func(ev executor.Event) { view(ev); nt.Event(ev) }
		defer func() {
			nt.Close()
			fails := nt.Failures()
			for _, f := range fails {
				fmt.Fprintf(stderr, "upgrader: warning: notify %q: %s not delivered (%d attempts): %s\n", f.Notify, f.Event, f.Attempts, f.Error)
			}
			if len(fails) > 0 && fails[0].Run != "" {
				store := opts.Store
				if store == nil {
					store = runstore.OpenLocal(stateDir)
				}
				if err := notify.JournalFailures(context.Background(), store, fails[0].Run, fails); err != nil {
					fmt.Fprintf(stderr, "upgrader: warning: journaling the failed notifications: %s\n", err)
				}
			}
		}()
	}
	if tty && !c.json {
		opts.Prompt = terminalPrompt(stdout)
	}
	sum, err := do(opts)
	if live != nil {
		live.Close()
	}
	reportPath := ""
	if err == nil && local {
		// A report that cannot be written does not change the run's outcome.
		var rerr error
		if reportPath, rerr = rep.finish(); rerr != nil {
			fmt.Fprintf(stderr, "upgrader: warning: the run's report: %s\n", rerr)
		}
	}
	if err != nil {
		var le *journal.LockedError
		if errors.As(err, &le) {
			fmt.Fprintf(stderr, "upgrader: %s\n", le)
			return exitLocked
		}
		fmt.Fprintf(stderr, "upgrader: %s\n", err)
		return exitInvalid
	}
	if !c.json {
		views.Summary(stdout, sum, stateDir, st)
		if reportPath != "" {
			fmt.Fprintf(stdout, "Report: %s\n", reportPath)
		}
	}
	return sum.ExitCode
}

// terminalPrompt asks a gate's question on the terminal.
func terminalPrompt(w io.Writer) func(ctx context.Context, q string) (bool, error) {
	return func(ctx context.Context, q string) (bool, error) {
		fmt.Fprintf(w, "\n%s Type 'yes' to approve (or approve from elsewhere): ", q)
		s, err := stdinLines.next(ctx)
		return s == "yes", err
	}
}

// stdinLines reads the terminal's lines in one goroutine, so that a question
// abandoned (a gate approved from elsewhere) does not swallow the next answer.
var stdinLines lineReader

type lineReader struct {
	once sync.Once
	ch   chan string
}

func (l *lineReader) next(ctx context.Context) (string, error) {
	l.once.Do(func() {
		l.ch = make(chan string)
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				l.ch <- strings.TrimSpace(sc.Text())
			}
			close(l.ch)
		}()
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case s, ok := <-l.ch:
		if !ok {
			return "", io.EOF
		}
		return s, nil
	}
}

// askSensitive asks on the terminal for the sensitive variables a saved
// plan left out and that neither -var nor the environment gives.
func askSensitive(sp *executor.SavedPlan, vars []string, w io.Writer) []string {
	for _, name := range sp.Sensitive {
		given := os.Getenv("UPGRADER_VAR_"+name) != ""
		for _, v := range vars {
			if strings.HasPrefix(v, name+"=") {
				given = true
			}
		}
		if given {
			continue
		}
		fmt.Fprintf(w, "Sensitive variable %s (not stored in the plan): ", name)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(w)
		if err == nil {
			vars = append(vars, name+"="+string(b))
		}
	}
	return vars
}

// detachApply re-executes upgrader in the background with a chosen run id,
// its output in runs/RUN/output.log, in a session of its own (setsid) so
// that closing the terminal does not stop it.
func detachApply(args, vars []string, stateDir string, p *executor.Plan, stdout, stderr io.Writer) int {
	id := journal.NewRunID(time.Now())
	runDir := journal.RunDir(stateDir, id)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	if err := report.WritePlan(stateDir, id, p); err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	logPath := filepath.Join(runDir, "output.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	child := append([]string{"apply", "-auto-approve", "-no-color", "-run-id", id, "-vars-stdin"}, withoutVars(args)...)
	// Variable values reach the child on a pipe, never in its argv (which
	// any local user can read for as long as the run lasts).
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: %s\n", err)
		return exitInvalid
	}
	cmd := exec.Command(self, child...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		fmt.Fprintf(stderr, "upgrader apply: starting the background run: %s\n", err)
		return exitInvalid
	}
	err = json.NewEncoder(pw).Encode(detachedVars{Vars: vars})
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "upgrader apply: passing the variables to the background run: %s\n", err)
		return exitInvalid
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	fmt.Fprintf(stdout, "\nRun %s started in the background (pid %d).\n  follow it:  tail -f %s\n  status:     upgrader status -state-dir %s %s\n", id, pid, logPath, stateDir, id)
	return exitOK
}

// detachedVars is what -detach writes on its child's stdin.
type detachedVars struct {
	Vars []string `json:"vars"`
}

// readDetachedVars reads the parent's detachedVars from r (the child's stdin).
func readDetachedVars(r io.Reader) ([]string, error) {
	var dv detachedVars
	if err := json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(&dv); err != nil {
		return nil, err
	}
	return dv.Vars, nil
}

// withoutVars drops -detach and every -var with its value from args; the
// background run gets the values on stdin instead.
func withoutVars(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		switch name {
		case "detach":
			continue
		case "var":
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// runRef is the run a command works on: where its state is kept, and the
// directory given on the command line.
type runRef struct {
	dir, stateDir, run string
	store              runstore.Store // closed by the command
}

// shared: the run may have been started from another machine, so its
// configuration is the one in DIR, not the directory the run recorded.
func (r *runRef) shared() bool {
	_, local := r.store.(*runstore.Local)
	return !local
}

// configDir is where the run's configuration is read from.
func (r *runRef) configDir(rs *executor.RunState) string {
	if r.shared() || rs == nil || rs.Dir == "" {
		return r.dir
	}
	return rs.Dir
}

// runTarget parses the flags and the [DIR] [RUN] arguments of the commands
// that work on a run (resume, rollback, status) and finds the run: the
// given one, or the newest. ok is false after a usage error was printed.
func runTarget(name string, fs *flag.FlagSet, c *common, args []string, stderr io.Writer) (ref runRef, ok bool) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return ref, false
	}
	dir, run, err := runArgs(pos)
	if err == nil {
		ref.dir, ref.stateDir = dir, c.stateDirFor(dir)
		ref.store, err = storeForDir(context.Background(), c, dir)
	}
	if err == nil {
		ref.run, err = pickRun(ref.store, run)
		if err != nil {
			ref.store.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "upgrader %s: %s\n", name, err)
		return ref, false
	}
	return ref, true
}

// runArgs splits [DIR] [RUN] positional arguments (either order, both optional).
func runArgs(pos []string) (dir, run string, err error) {
	dir = "."
	for _, p := range pos {
		switch {
		case journal.ValidRunID(p) && run == "":
			run = p
		case dir == ".":
			dir = p
		default:
			return "", "", fmt.Errorf("unexpected argument %q", p)
		}
	}
	return dir, run, nil
}

// pickRun returns run, or the newest run of the store.
func pickRun(store runstore.Store, run string) (string, error) {
	runs, err := store.Runs(context.Background())
	if err != nil {
		return "", err
	}
	if run != "" {
		if !slices.Contains(runs, run) {
			return "", fmt.Errorf("no run %s in %s", run, store.Where())
		}
		return run, nil
	}
	if len(runs) == 0 {
		return "", fmt.Errorf("no runs in %s", store.Where())
	}
	return runs[len(runs)-1], nil
}

// loadForRun reloads a run's configuration as the run recorded it (from
// DIR when the run is shared: it may have started on another machine).
func loadForRun(c *common, ref runRef, stdout, stderr io.Writer) (*lang.Config, *executor.RunState, executor.Options, bool) {
	rs, err := executor.ReplayFrom(context.Background(), ref.store, ref.run)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader: %s\n", err)
		return nil, nil, executor.Options{}, false
	}
	vars := append(append([]string(nil), rs.VarArgs...), c.vars...)
	var varFiles []string
	for _, f := range rs.VarFiles {
		if _, err := os.Stat(f); err == nil || !ref.shared() { // another machine's paths may not exist here
			varFiles = append(varFiles, f)
		}
	}
	varFiles = append(varFiles, absPaths(c.varFiles)...)
	cfg, reg, ok := loadRunConfigOut(ref.configDir(rs), c, vars, varFiles, true, stdout, stderr)
	if !ok {
		return nil, nil, executor.Options{}, false
	}
	return cfg, rs, executor.Options{Config: cfg, Registry: reg, StateDir: ref.stateDir, Store: ref.store, Parallelism: c.parallelism,
		Vars: vars, VarFiles: varFiles, Version: version}, true
}
