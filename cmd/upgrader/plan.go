package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

func init() {
	register("plan", "probe the hosts read-only and show what apply would do", runPlan)
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plan", stderr)
	var c common
	c.register(fs)
	out := fs.String("out", "", "save the plan to FILE for `upgrader apply FILE`")
	offline := fs.Bool("offline", false, "contact no host: show the nodes, their hosts, actions and undo from the configuration alone")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	dir, err := dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader plan: %s\n", err)
		return exitInvalid
	}
	if *offline && *out != "" {
		fmt.Fprintln(stderr, "upgrader plan: -out needs the probes: it cannot be combined with -offline")
		return exitInvalid
	}
	st := views.NewStyle(fileOf(stdout), c.noColor)
	ctx, stop := signalContext()
	defer stop()
	c.varFiles = absPaths(c.varFiles)
	cfg, reg, ok := loadRunConfigOut(dir, &c, c.vars, c.varFiles, false, stdout, stderr)
	if !ok {
		return exitInvalid
	}
	opts := executor.Options{Config: cfg, Registry: reg, StateDir: c.stateDirFor(cfg.Dir), Parallelism: c.parallelism,
		Vars: c.vars, VarFiles: c.varFiles, Version: version}
	if !*offline {
		hosts := newHosts()
		defer hosts.Close()
		opts.Hosts = hosts
	}
	p, err := executor.MakePlan(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader plan: %s\n", err)
		return exitInvalid
	}
	if c.json {
		_ = views.PlanJSON(stdout, p)
	} else {
		views.Plan(stdout, p, st)
	}
	if *out != "" {
		if len(p.Errors) > 0 {
			fmt.Fprintf(stderr, "upgrader plan: not saving %s: some hosts could not be probed\n", *out)
			return exitFailedRolledBack
		}
		if err := p.Save(*out, opts); err != nil {
			fmt.Fprintf(stderr, "upgrader plan: saving %s: %s\n", *out, err)
			return exitFailedRolledBack
		}
		if !c.json {
			fmt.Fprintf(stdout, "\nSaved the plan to %s. Apply exactly this plan with: upgrader apply %s\n", *out, *out)
		}
	}
	if len(p.Errors) > 0 {
		return exitFailedRolledBack
	}
	return exitOK
}

// loadRunConfig loads and validates the configuration in dir, printing
// diagnostics on stderr; ok is false when it has errors.
func loadRunConfig(dir string, c *common, vars, varFiles []string, apply bool, stderr io.Writer) (*lang.Config, *modules.Registry, bool) {
	return loadRunConfigOut(dir, c, vars, varFiles, apply, io.Discard, stderr)
}

// loadRunConfigOut is loadRunConfig that, with -json, also prints the
// diagnostics as JSON on stdout.
func loadRunConfigOut(dir string, c *common, vars, varFiles []string, apply bool, stdout, stderr io.Writer) (*lang.Config, *modules.Registry, bool) {
	given := dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // recorded in runs and saved plans: must not depend on the cwd
	}
	reg := newRegistry()
	cfg, ds := lang.Load(dir, executor.Schemas(reg), lang.Options{Vars: vars, VarFiles: varFiles, Apply: apply})
	if !ds.HasErrors() {
		ds = append(ds, executor.Validate(cfg, reg)...)
	}
	if len(ds) > 0 {
		var files map[string]*hcl.File
		if cfg != nil {
			files = cfg.Files
		}
		files, shown := shownAs(dir, given, files, ds)
		if c.json && ds.HasErrors() {
			_ = views.DiagnosticsEvent(stdout, shown) // machines get them on stdout too (docs/JSON.md)
		}
		// the plan prints backup waivers itself, in red
		var human hcl.Diagnostics
		for _, d := range shown {
			if d.Severity == hcl.DiagWarning && strings.HasPrefix(d.Summary, "Backup interlock waived") {
				continue
			}
			human = append(human, d)
		}
		printDiags(stderr, files, human, c)
	}
	return cfg, reg, !ds.HasErrors()
}

// shownAs names the files of diags as the user gave the directory (given),
// not as loaded (abs), so every command prints the names validate prints.
func shownAs(abs, given string, files map[string]*hcl.File, ds hcl.Diagnostics) (map[string]*hcl.File, hcl.Diagnostics) {
	rename := func(name string) string {
		rel, err := filepath.Rel(abs, name)
		if err != nil || !filepath.IsLocal(rel) {
			return name // a -var-file outside the directory
		}
		return filepath.Join(given, rel)
	}
	renamed := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		renamed[rename(name)] = f
	}
	out := make(hcl.Diagnostics, len(ds))
	for i, d := range ds {
		c := *d
		for _, r := range []**hcl.Range{&c.Subject, &c.Context} {
			if *r != nil {
				nr := **r
				nr.Filename = rename(nr.Filename)
				*r = &nr
			}
		}
		out[i] = &c
	}
	return renamed, out
}

// absPaths makes -var-file paths absolute: runs and saved plans record them,
// and resume or apply FILE may run from another directory.
func absPaths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if a, err := filepath.Abs(p); err == nil {
			out[i] = a
		}
	}
	return out
}

// newHosts is the SSH transport; the passphrase of an encrypted key comes
// from UPGRADER_SSH_PASSPHRASE.
func newHosts() executor.Hosts { return executor.NewSSHHosts(ssh.Options{}) }

// signalContext is cancelled by SIGINT or SIGTERM: the run stops starting
// nodes, lets running ones see the cancellation, and stays resumable.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// fileOf returns w as an *os.File when it is one (for terminal checks).
func fileOf(w io.Writer) *os.File {
	f, _ := w.(*os.File)
	return f
}
