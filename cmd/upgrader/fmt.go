package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	langdiags "github.com/upgrader-dev/upgrader/lang/diags"
)

// exitFmtDiff is fmt -check's status when a file would change.
const exitFmtDiff = 1

func init() {
	register("fmt", "rewrite the HCL files in canonical format (-check: only report)", runFmt)
}

func runFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fmt", stderr)
	check := fs.Bool("check", false, "change nothing; list the files that are not formatted and exit 1 if any")
	noColor := fs.Bool("no-color", false, "no colors")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: upgrader fmt [-check] [DIR | FILE...]\n\nFormats every *.hcl file of DIR (default .; *.vars.hcl included) in place\nand lists the files it changed.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	if len(pos) == 0 {
		pos = []string{"."}
	}
	var files []string
	for _, p := range pos {
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(stderr, "upgrader fmt: %v\n", err)
			return exitInvalid
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.hcl"))
		if err != nil {
			fmt.Fprintf(stderr, "upgrader fmt: %v\n", err)
			return exitInvalid
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}

	var diags hcl.Diagnostics
	parsed := map[string]*hcl.File{}
	var changed []string
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "upgrader fmt: %v\n", err)
			return exitInvalid
		}
		// hclwrite formats even broken input; refuse it instead of guessing.
		ds := langdiags.Nesting(src, name, false)
		var f *hcl.File
		if ds == nil {
			f, ds = hclsyntax.ParseConfig(src, name, hcl.Pos{Line: 1, Column: 1})
		}
		parsed[name] = f
		if ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		changed = append(changed, name)
		if *check {
			continue
		}
		st, err := os.Stat(name)
		if err != nil {
			fmt.Fprintf(stderr, "upgrader fmt: %v\n", err)
			return exitInvalid
		}
		// Through a temporary file and a rename, keeping the mode: a
		// failure never leaves a half-written file.
		if err := journal.WriteFileAtomic(name, out, st.Mode().Perm()); err != nil {
			fmt.Fprintf(stderr, "upgrader fmt: %v\n", err)
			return exitInvalid
		}
	}
	for _, name := range changed {
		fmt.Fprintln(stdout, name)
	}
	if len(diags) == 0 {
		printDiags(stderr, parsed, lang.LintCommands(parsed), &common{noColor: *noColor})
	}
	if len(diags) > 0 {
		printDiags(stderr, parsed, diags, &common{noColor: *noColor})
		return exitInvalid
	}
	if *check && len(changed) > 0 {
		fmt.Fprintf(stderr, "upgrader fmt: %d file(s) not formatted: %s (run upgrader fmt)\n", len(changed), strings.Join(changed, ", "))
		return exitFmtDiff
	}
	return exitOK
}
