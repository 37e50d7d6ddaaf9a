package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

func init() {
	register("validate", "check the configuration: syntax, types, references, graph, backup interlock (no network)", runValidate)
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	var c common
	dir, ok := parseDirCommand("validate", "Usage: upgrader validate [flags] [DIR]\n\nChecks the configuration in DIR (default .) without touching any host.\nExit status 0 when valid, 2 when not.\n\n", args, &c, stderr)
	if !ok {
		return exitInvalid
	}
	cfg, _, diags := loadAndValidate(dir, &c)
	if !diags.HasErrors() {
		diags = append(diags, lang.LintCommands(cfg.Files)...)
	}
	if c.json {
		if err := views.ValidateJSON(stdout, diags, cfg.Unset); err != nil {
			fmt.Fprintf(stderr, "upgrader validate: %v\n", err)
			return exitInvalid
		}
	} else {
		printDiags(stderr, cfg.Files, diags, &c)
		if !diags.HasErrors() {
			fmt.Fprintf(stdout, "The configuration in %s is valid: %s in %s, %s, %s.\n", dir,
				count(len(cfg.Nodes), "node"), count(len(cfg.Phases), "phase"), count(len(cfg.Hosts), "host"), count(len(cfg.Databases), "database"))
			if len(cfg.Unset) > 0 {
				fmt.Fprintf(stdout, "Checked without a value for %s (%s): plan and apply will need them.\n",
					count(len(cfg.Unset), "required variable"), strings.Join(cfg.Unset, ", "))
			}
		}
	}
	if diags.HasErrors() {
		return exitInvalid
	}
	return exitOK
}

// parseDirCommand parses the common flags and the optional DIR of a
// command that reads a configuration; ok is false on a usage error
// (already reported on stderr).
func parseDirCommand(name, usage string, args []string, c *common, stderr io.Writer) (dir string, ok bool) {
	fs := newFlagSet(name, stderr)
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", false
	}
	dir, err = dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader %s: %v\n", name, err)
		return "", false
	}
	return dir, true
}

// loadAndValidate loads the configuration in dir with the common flags and,
// when it loads cleanly, validates it (graph, interlock, modules).
func loadAndValidate(dir string, c *common) (*lang.Config, *modules.Registry, hcl.Diagnostics) {
	reg := newRegistry()
	cfg, diags := lang.Load(dir, executor.Schemas(reg), lang.Options{Vars: c.vars, VarFiles: c.varFiles, Unset: true})
	if !diags.HasErrors() {
		diags = append(diags, executor.Validate(cfg, reg)...)
	}
	return cfg, reg, diags
}

// printDiags renders diagnostics for people on w, in color only on a
// terminal and without -no-color.
func printDiags(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, c *common) {
	if len(diags) == 0 {
		return
	}
	f, _ := w.(*os.File)
	color := !c.noColor && views.IsTerminal(f) && os.Getenv("NO_COLOR") == ""
	_ = views.Diagnostics(w, files, diags, color)
}

// count says "1 host" or "3 hosts".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
