package main

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	activestandby "github.com/upgrader-dev/upgrader/examples/active-standby"
)

// initFiles are what the starter adds to the procedure of
// examples/active-standby (activestandby.Files): hosts and READMEs left for
// the user to fill in.
//
//go:embed initdata
var initFiles embed.FS

// starter is the whole starter configuration: the example's files, then
// initdata's, by their paths in the written directory.
func starter() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, src := range []struct {
		fsys fs.FS
		root string
	}{{activestandby.Files, "."}, {initFiles, "initdata"}} {
		err := fs.WalkDir(src.fsys, src.root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(src.fsys, p)
			if err != nil {
				return err
			}
			rel := p
			if src.root != "." {
				rel = strings.TrimPrefix(p, src.root+"/")
			}
			files[rel] = data
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func init() {
	register("init", "write a starter configuration for the active/standby procedure", runInit)
}

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("init", stderr)
	force := fs.Bool("force", false, "overwrite files that already exist")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: upgrader init [-force] [DIR]\n\nWrites a starter configuration for the active/standby procedure into DIR (default .).\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	dir, err := dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader init: %v\n", err)
		return exitInvalid
	}
	written, err := writeStarter(dir, *force)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader init: %v\n", err)
		return exitInvalid
	}
	for _, f := range written {
		fmt.Fprintf(stdout, "  wrote %s\n", filepath.Join(dir, f))
	}
	fmt.Fprintf(stdout, "\nNext: fill in hosts.hcl, variables.hcl and the locals at the top of upgrade.hcl\n"+
		"(see %s), then run:\n  upgrader validate %s\n  upgrader plan %s\n",
		filepath.Join(dir, "README.md"), dir, dir)
	return exitOK
}

// writeStarter writes the embedded files under dir and returns their paths
// relative to dir. It checks for existing files first, so that a refusal
// writes nothing; each file is written to a temporary name and renamed.
func writeStarter(dir string, force bool) ([]string, error) {
	contents, err := starter()
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(contents))
	for f := range contents {
		files = append(files, f)
	}
	sort.Strings(files)
	if !force {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
				exist = append(exist, f)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("%s already has %s; nothing written (use -force to overwrite)", dir, strings.Join(exist, ", "))
		}
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, filepath.FromSlash(f)), contents[f]); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeAtomic never leaves a half-written file at name.
func writeAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
