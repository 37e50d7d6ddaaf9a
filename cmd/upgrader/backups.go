package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/upgrader-dev/upgrader/cmd/upgrader/views"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/backup"
)

func init() {
	register("backups", "inspect, verify and restore backups: backups list | verify | restore RUN NAME [-to HOST]", runBackups)
}

func backupsUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  upgrader backups list    [flags] [DIR]                 every backup: size, age, complete or not
  upgrader backups verify  [flags] [DIR] [RUN[/NAME]...] read every archive back, check its sha256 against its manifest
  upgrader backups restore [flags] RUN NAME [DIR]         put one backup back (-to HOST: onto another host)

Backups live in the state directory (-state-dir, default DIR/.upgrader) under backups/RUN/NAME/.
restore reads DIR's configuration for the hosts' connections and the databases' DSNs.
`)
}

func runBackups(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		backupsUsage(stderr)
		if len(args) == 0 {
			return exitInvalid
		}
		return exitOK
	}
	switch args[0] {
	case "list":
		return runBackupsList(args[1:], stdout, stderr)
	case "verify":
		return runBackupsVerify(args[1:], stdout, stderr)
	case "restore":
		return runBackupsRestore(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "upgrader backups: unknown subcommand %q\n\n", args[0])
	backupsUsage(stderr)
	return exitInvalid
}

func runBackupsList(args []string, stdout, stderr io.Writer) int {
	var c common
	dir, ok := parseDirCommand("backups list", "Usage: upgrader backups list [flags] [DIR]\n\nLists the backups in DIR's state directory: sizes, ages, complete or not.\n\n", args, &c, stderr)
	if !ok {
		return exitInvalid
	}
	stateDir := c.stateDirFor(dir)
	entries, err := backup.List(stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader backups list: %s\n", err)
		return exitFailedRolledBack
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			_ = enc.Encode(entryJSON(e))
		}
		return exitOK
	}
	if len(entries) == 0 {
		fmt.Fprintf(stdout, "No backups in %s.\n", filepath.Join(stateDir, "backups"))
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tSOURCE\tSIZE\tENTRIES\tAGE\tSTATUS")
	var total int64
	for _, e := range entries {
		total += e.Size
		src, files, status := "-", "-", "complete"
		if m := e.Manifest; m != nil {
			src, files = sourceOf(m), fmt.Sprint(m.Files)
			if m.Kind == backup.KindDatabase {
				files = "-"
			}
		}
		if e.Problem != "" {
			status = e.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, src, modules.HumanBytes(e.Size), files, age(e.Time), status)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d backups, %s in %s. `upgrader backups verify` reads each one back.\n", len(entries), modules.HumanBytes(total), filepath.Join(stateDir, "backups"))
	return exitOK
}

func sourceOf(m *backup.Manifest) string {
	if m.Kind == backup.KindDatabase {
		return fmt.Sprintf("database %s (%s)", m.Database, m.Driver)
	}
	return fmt.Sprintf("host %s: %s", m.Host, strings.Join(m.Paths, ", "))
}

type backupJSON struct {
	ID       string           `json:"id"`
	Dir      string           `json:"dir"`
	Size     int64            `json:"size"`
	Time     time.Time        `json:"time"`
	Complete bool             `json:"complete"`
	Problem  string           `json:"problem,omitempty"`
	Manifest *backup.Manifest `json:"manifest,omitempty"`
	Verified *bool            `json:"verified,omitempty"`
	Error    string           `json:"error,omitempty"`
}

func entryJSON(e backup.Entry) backupJSON {
	return backupJSON{ID: e.ID, Dir: e.Dir, Size: e.Size, Time: e.Time, Complete: e.Complete(), Problem: e.Problem, Manifest: e.Manifest}
}

func runBackupsVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backups verify", stderr)
	var c common
	c.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	// [DIR] then filters: an argument that is a directory is DIR.
	dir := "."
	if len(pos) > 0 {
		if fi, err := os.Stat(pos[0]); err == nil && fi.IsDir() {
			dir, pos = pos[0], pos[1:]
		}
	}
	stateDir := c.stateDirFor(dir)
	entries, err := backup.List(stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader backups verify: %s\n", err)
		return exitFailedRolledBack
	}
	var picked []backup.Entry
	for _, e := range entries {
		if len(pos) == 0 {
			picked = append(picked, e)
			continue
		}
		for _, p := range pos {
			if p == e.ID || p == e.Run {
				picked = append(picked, e)
				break
			}
		}
	}
	if len(pos) > 0 && len(picked) == 0 {
		fmt.Fprintf(stderr, "upgrader backups verify: no backup %s in %s\n", strings.Join(pos, ", "), filepath.Join(stateDir, "backups"))
		return exitInvalid
	}
	ctx, stop := signalContext()
	defer stop()
	bad := 0
	enc := json.NewEncoder(stdout)
	for _, e := range picked {
		start := time.Now()
		_, st, err := backup.VerifyDir(ctx, e.Dir)
		if c.json {
			j := entryJSON(e)
			ok := err == nil
			j.Verified = &ok
			if err != nil {
				j.Error = err.Error()
			}
			_ = enc.Encode(j)
		} else if err != nil {
			fmt.Fprintf(stdout, "FAILED  %s: %s\n", e.ID, err)
		} else {
			fmt.Fprintf(stdout, "ok      %s: sha256 %s, %s, %d entries (%s)\n", e.ID, st.SHA256[:16], modules.HumanBytes(st.ArchiveBytes), st.Files, time.Since(start).Round(time.Millisecond))
		}
		if err != nil {
			bad++
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !c.json {
		fmt.Fprintf(stdout, "\n%d verified, %d failed.\n", len(picked)-bad, bad)
	}
	if bad > 0 {
		return exitFailedRolledBack
	}
	return exitOK
}

func runBackupsRestore(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backups restore", stderr)
	var c common
	c.register(fs)
	to := fs.String("to", "", "restore a host backup onto this host of the configuration instead of its own")
	var paths stringList
	fs.Var(&paths, "path", "restore only this path of a host backup (repeatable; each inside a backed-up path)")
	autoApprove := fs.Bool("auto-approve", false, "do not ask for confirmation")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: upgrader backups restore [flags] RUN NAME [DIR]   (or RUN/NAME)\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	if len(pos) > 0 && strings.Count(pos[0], "/") == 1 && !isDir(pos[0]) {
		run, name, _ := strings.Cut(pos[0], "/")
		pos = append([]string{run, name}, pos[1:]...)
	}
	if len(pos) < 2 || len(pos) > 3 {
		fs.Usage()
		return exitInvalid
	}
	id, dir := pos[0]+"/"+pos[1], "."
	if len(pos) == 3 {
		dir = pos[2]
	}
	cfg, _, ok := loadRunConfig(dir, &c, c.vars, c.varFiles, true, stderr)
	if !ok {
		return exitInvalid
	}
	stateDir := c.stateDirFor(cfg.Dir)
	bdir, err := backup.IDDir(stateDir, id)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
		return exitInvalid
	}
	m, err := backup.ReadManifest(bdir)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(bdir); serr != nil {
			fmt.Fprintf(stderr, "upgrader backups restore: no backup %s in %s (see upgrader backups list)\n", id, filepath.Join(stateDir, "backups"))
		} else {
			fmt.Fprintf(stderr, "upgrader backups restore: backup %s is incomplete (no manifest): it cannot be restored\n", id)
		}
		return exitInvalid
	}
	if err != nil {
		fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
		return exitInvalid
	}
	opts := backup.RestoreOptions{Paths: paths, Log: stdout}
	ctx, stop := signalContext()
	defer stop()
	hosts := newHosts()
	defer hosts.Close()
	var what string
	switch m.Kind {
	case backup.KindDatabase:
		if *to != "" || len(paths) > 0 {
			fmt.Fprintf(stderr, "upgrader backups restore: %s is a backup of database %s: -to and -path apply to host backups only\n", id, m.Database)
			return exitInvalid
		}
		d := cfg.Databases[m.Database]
		if d == nil {
			fmt.Fprintf(stderr, "upgrader backups restore: database %q is not in the configuration in %s\n", m.Database, cfg.Dir)
			return exitInvalid
		}
		opts.Database = &modules.Database{Name: d.Name, Driver: d.Driver, DSN: d.DSN, Host: d.Host}
		if d.Host != "" {
			h := cfg.Hosts[d.Host]
			if h == nil {
				fmt.Fprintf(stderr, "upgrader backups restore: host %q of database %s is not in the configuration\n", d.Host, d.Name)
				return exitInvalid
			}
			if opts.DBTarget, err = hosts.Target(ctx, h); err != nil {
				fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
				return exitFailedRolledBack
			}
		}
		what = fmt.Sprintf("database %s: the objects in the dump are dropped and recreated (pg_restore --clean / mysql)", m.Database)
	default:
		opts.Host = m.Host
		if *to != "" {
			opts.Host = *to
		}
		h := cfg.Hosts[opts.Host]
		if h == nil {
			fmt.Fprintf(stderr, "upgrader backups restore: host %q is not in the configuration in %s; name one with -to HOST\n", opts.Host, cfg.Dir)
			return exitInvalid
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") || !m.Covers(p) {
				fmt.Fprintf(stderr, "upgrader backups restore: -path %s is not in backup %s, which holds %s\n", p, id, strings.Join(m.Paths, ", "))
				return exitInvalid
			}
		}
		ps := m.Paths
		if len(paths) > 0 {
			ps = paths
		}
		what = fmt.Sprintf("host %s: %s are replaced by the backup's content", opts.Host, strings.Join(ps, ", "))
		if opts.Target, err = hosts.Target(ctx, h); err != nil {
			fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
			return exitFailedRolledBack
		}
	}
	fmt.Fprintf(stdout, "Backup %s (%s, %s, taken %s, %s ago)\nwill be restored onto %s.\n",
		id, sourceOf(m), modules.HumanBytes(m.ArchiveBytes), m.CreatedAt.Local().Format(time.DateTime), age(m.CreatedAt), what)
	if !*autoApprove {
		if !views.IsTerminal(os.Stdin) {
			fmt.Fprintln(stderr, "upgrader backups restore: not on a terminal, so the restore cannot be confirmed; run it with -auto-approve")
			return exitInvalid
		}
		fmt.Fprint(stdout, "\nDo you want to restore it? Only 'yes' is accepted: ")
		ans, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(ans) != "yes" {
			fmt.Fprintln(stdout, "Restore cancelled; nothing was changed.")
			return exitFailedRolledBack
		}
	}
	// A restore and a run must not change the same hosts at once.
	lock, err := journal.Acquire(stateDir, "restore "+id)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
		var le *journal.LockedError
		if errors.As(err, &le) {
			return exitLocked
		}
		return exitFailedRolledBack
	}
	defer lock.Release()
	start := time.Now()
	if err := restoreWithProgress(ctx, bdir, opts, stdout); err != nil {
		fmt.Fprintf(stderr, "upgrader backups restore: %s\n", err)
		return exitFailedRolledBack
	}
	fmt.Fprintf(stdout, "Restored %s in %s.\n", id, time.Since(start).Round(time.Millisecond))
	return exitOK
}

// restoreWithProgress prints a progress line on a terminal.
func restoreWithProgress(ctx context.Context, dir string, o backup.RestoreOptions, w io.Writer) error {
	if f := fileOf(w); views.IsTerminal(f) {
		var last time.Time
		o.Progress = func(done, total int64) {
			if time.Since(last) > 500*time.Millisecond || done == total {
				last = time.Now()
				fmt.Fprintf(w, "\r  %s of %s", modules.HumanBytes(done), modules.HumanBytes(total))
			}
		}
		defer fmt.Fprintln(w)
	}
	return backup.RestoreDir(ctx, dir, o)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// age is a short "3d4h", "2h10m", "5m", "40s".
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
