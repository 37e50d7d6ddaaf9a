// Command upgrader turns a production upgrade runbook into a plan that a
// machine carries out over SSH, with backups and automatic rollback.
//
// This package owns flags, subcommands and exit codes; it is the only
// caller of os.Exit. Nothing imports it.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// Exit codes (SPEC 3).
const (
	exitOK                 = 0
	exitFailedRolledBack   = 1
	exitInvalid            = 2
	exitRollbackIncomplete = 3
	exitLocked             = 4
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is the subcommand table; each lives in a file of its own.
var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := commands[name]; dup {
		panic("duplicate command " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitInvalid
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Fprintf(stdout, "upgrader %s\n", version)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "upgrader: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitInvalid
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: upgrader COMMAND [flags] [args]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nCommon flags: -var NAME=VALUE, -var-file FILE, -state-dir DIR, -parallelism N, -json, -no-color\nRun 'upgrader COMMAND -h' for a command's flags.\n")
}
