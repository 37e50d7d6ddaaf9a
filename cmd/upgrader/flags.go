package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// stringList is a repeatable string flag (-var, -var-file).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// common holds the flags every configuration command shares (SPEC 3).
type common struct {
	vars        stringList
	varFiles    stringList
	stateDir    string
	parallelism int
	json        bool
	noColor     bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.Var(&c.vars, "var", "set a variable: NAME=VALUE (repeatable)")
	fs.Var(&c.varFiles, "var-file", "read variables from FILE (repeatable)")
	fs.StringVar(&c.stateDir, "state-dir", "", "state directory (default DIR/.upgrader)")
	fs.IntVar(&c.parallelism, "parallelism", 10, "how many independent nodes run at once")
	fs.BoolVar(&c.json, "json", false, "one JSON event per line on stdout instead of the human view")
	fs.BoolVar(&c.noColor, "no-color", false, "no colors")
}

// stateDirFor returns the state directory for a configuration directory.
func (c *common) stateDirFor(dir string) string {
	if c.stateDir != "" {
		return c.stateDir
	}
	return filepath.Join(dir, ".upgrader")
}

// newFlagSet returns a flag set that reports usage errors on stderr and
// never exits the process.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses flags that may stand before or after the positional
// arguments (upgrader plan DIR -out f works like upgrader plan -out f DIR).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// dirArg returns the single optional DIR argument (default ".").
func dirArg(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return ".", nil
	case 1:
		return pos[0], nil
	default:
		return "", fmt.Errorf("expected at most one directory, got %d arguments", len(pos))
	}
}
