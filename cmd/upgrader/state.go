package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

func init() {
	register("state", "the run store: state migrate -from local -to postgres [DIR]", runState)
}

func runState(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "migrate" {
		fmt.Fprintln(stderr, "usage: upgrader state migrate -from local -to postgres [DIR]\n\nmoves the runs of the state directory (-state-dir, default DIR/.upgrader) into DIR's state block's postgres workspace")
		return exitInvalid
	}
	fs := newFlagSet("state migrate", stderr)
	var c common
	c.register(fs)
	from := fs.String("from", "local", "where the runs are: local")
	to := fs.String("to", "postgres", "where they go: postgres (DIR's state block)")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return exitInvalid
	}
	dir, err := dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader state migrate: %s\n", err)
		return exitInvalid
	}
	if *from != "local" || *to != "postgres" {
		fmt.Fprintln(stderr, "upgrader state migrate: only -from local -to postgres is supported")
		return exitInvalid
	}
	ctx, stop := signalContext()
	defer stop()
	dst, err := storeForDir(ctx, &c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader state migrate: %s\n", err)
		return exitInvalid
	}
	defer dst.Close()
	if _, ok := dst.(*runstore.Local); ok {
		fmt.Fprintf(stderr, "upgrader state migrate: %s has no state block with backend = \"postgres\" to move the runs to\n", dir)
		return exitInvalid
	}
	src := runstore.OpenLocal(c.stateDirFor(dir))
	n, err := migrateRuns(ctx, src, dst, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader state migrate: %s\n", err)
		var le *runstore.LockedError
		if errors.As(err, &le) {
			return exitLocked
		}
		return exitInvalid
	}
	fmt.Fprintf(stdout, "Moved %s into %s. %s is left as it was: remove it once you are satisfied.\n", n, dst.Where(), src.Dir)
	return exitOK
}

type migrated struct{ runs, skipped, events, samples, approvals, backups int }

func (m migrated) String() string {
	s := fmt.Sprintf("%d run(s) (%d events, %d observation samples, %d approvals) and %d backup index entries", m.runs, m.events, m.samples, m.approvals, m.backups)
	if m.skipped > 0 {
		s += fmt.Sprintf("; %d run(s) were there already", m.skipped)
	}
	return s
}

// migrateRuns copies every run of src into dst, then reads each back and
// compares: nothing is lost, or the command fails. A run already in dst
// with the same events is skipped (a second migrate is harmless).
func migrateRuns(ctx context.Context, src *runstore.Local, dst runstore.Store, w io.Writer) (migrated, error) {
	var m migrated
	if h, stale, err := src.Holder(ctx); err != nil {
		return m, err
	} else if h != nil && !stale {
		return m, &runstore.LockedError{Path: src.Dir, Holder: *h}
	}
	runs, err := src.Runs(ctx)
	if err != nil {
		return m, err
	}
	for _, run := range runs {
		evs, _, err := src.Events(ctx, run)
		if err != nil {
			var ee *runstore.EmptyError
			if errors.As(err, &ee) {
				fmt.Fprintf(w, "  %s: skipped, %s\n", run, err)
				continue
			}
			return m, fmt.Errorf("run %s: %w", run, err)
		}
		if have, _, err := dst.Events(ctx, run); err == nil {
			if len(have) != len(evs) {
				return m, fmt.Errorf("run %s is in %s already, with %d events where the state directory has %d: not overwritten", run, dst.Where(), len(have), len(evs))
			}
			m.skipped++
			continue
		} else if !errors.Is(err, runstore.ErrNoRun) {
			return m, err
		}
		if err := copyRun(ctx, src, dst, run, evs, &m); err != nil {
			return m, fmt.Errorf("run %s: %w", run, err)
		}
		m.runs++
		fmt.Fprintf(w, "  %s: %d events\n", run, len(evs))
	}
	bs, err := src.Backups(ctx)
	if err != nil {
		return m, err
	}
	for _, b := range bs {
		if err := dst.PutBackup(ctx, b); err != nil {
			return m, err
		}
		m.backups++
	}
	return m, nil
}

func copyRun(ctx context.Context, src *runstore.Local, dst runstore.Store, run string, evs []runstore.Event, m *migrated) error {
	l, err := dst.Lock(ctx, run)
	if err != nil {
		return err
	}
	defer l.Release()
	j, err := l.Create(ctx)
	if err != nil {
		return err
	}
	defer j.Close()
	for _, ev := range evs {
		if err := j.Append(ev); err != nil {
			return err
		}
	}
	m.events += len(evs)
	if sm, err := src.Summary(ctx, run); err != nil {
		return err
	} else if sm != nil {
		if err := dst.PutSummary(ctx, *sm); err != nil {
			return err
		}
	}
	files, _ := filepath.Glob(filepath.Join(journal.RunDir(src.Dir, run), "approvals", "*.json"))
	for _, f := range files {
		node := strings.TrimSuffix(filepath.Base(f), ".json")
		a, err := src.Approval(ctx, run, node)
		if err != nil || a == nil {
			continue
		}
		if _, err := dst.Approve(ctx, run, node, a.By); err != nil {
			return err
		}
		m.approvals++
	}
	var batch []byte
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.AppendSamples(ctx, run, batch)
		batch = batch[:0]
		return err
	}
	err = src.Samples(ctx, run, func(line []byte) error {
		batch = append(batch, line...)
		n++
		if len(batch) > 1<<20 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	m.samples += n
	// read back: the same events, in the same order, and every sample
	got, _, err := dst.Events(ctx, run)
	if err != nil {
		return err
	}
	if len(got) != len(evs) {
		return fmt.Errorf("read back %d events of %d", len(got), len(evs))
	}
	for i := range evs {
		if got[i].Type != evs[i].Type || got[i].Node != evs[i].Node || !got[i].TS.Equal(evs[i].TS) {
			return fmt.Errorf("event %d read back differs", i+1)
		}
	}
	k := 0
	if err := dst.Samples(ctx, run, func([]byte) error { k++; return nil }); err != nil {
		return err
	}
	if k != n {
		return fmt.Errorf("read back %d observation samples of %d", k, n)
	}
	return nil
}
