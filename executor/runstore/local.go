package runstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/modules"
)

// Local is the state directory (.upgrader/): runs/RUN/journal.jsonl
// (fsynced), the lock file, runs/RUN/approvals/NODE.json, runs/RUN/state,
// runs/RUN/metrics.jsonl and backups/RUN/NAME/manifest.json. The layout is
// docs/DESIGN.md's "Journal".
type Local struct {
	Dir     string
	samples sync.Mutex // one AppendSamples write at a time in this process
}

// OpenLocal returns the store of a state directory (created on first write).
func OpenLocal(dir string) *Local { return &Local{Dir: dir} }

var _ Store = (*Local)(nil)

func (l *Local) Where() string { return l.Dir }
func (l *Local) Close() error  { return nil }

func (l *Local) Runs(ctx context.Context) ([]string, error) { return journal.Runs(l.Dir) }

func (l *Local) Events(ctx context.Context, run string) ([]Event, *Torn, error) {
	if !ValidRunID(run) {
		return nil, nil, fmt.Errorf("%q is not a run id: %w", run, ErrNoRun)
	}
	evs, torn, err := journal.ReadRun(journal.Path(l.Dir, run))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no run %s in %s: %w", run, journal.RunsDir(l.Dir), ErrNoRun)
	}
	return evs, torn, err
}

func (l *Local) Lock(ctx context.Context, run string) (Lock, error) {
	jl, err := journal.Acquire(l.Dir, run)
	if err != nil {
		return nil, err
	}
	return &localLock{l: l, jl: jl}, nil
}

func (l *Local) TakeOver(ctx context.Context, run string) (Lock, error) {
	jl, err := journal.TakeOver(l.Dir, run)
	if err != nil {
		return nil, err
	}
	return &localLock{l: l, jl: jl}, nil
}

func (l *Local) Holder(ctx context.Context) (*Holder, bool, error) {
	h, err := journal.ReadLock(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return h, journal.IsStale(*h), nil
}

func (l *Local) Unlock(ctx context.Context, force bool) (*Holder, error) {
	return journal.Unlock(l.Dir, force)
}

func (l *Local) Approve(ctx context.Context, run, node, by string) (*Approval, error) {
	if err := CheckApproval(run, node); err != nil {
		return nil, err
	}
	if _, err := os.Stat(journal.Path(l.Dir, run)); err != nil {
		return nil, fmt.Errorf("no run %s in %s: %w", run, journal.RunsDir(l.Dir), ErrNoRun)
	}
	return journal.Approve(l.Dir, run, node, by)
}

func (l *Local) Approval(ctx context.Context, run, node string) (*Approval, error) {
	if err := CheckApproval(run, node); err != nil {
		return nil, err
	}
	return journal.ReadApproval(l.Dir, run, node)
}

func (l *Local) PutSummary(ctx context.Context, s Summary) error {
	if !ValidRunID(s.Run) {
		return fmt.Errorf("%q is not a run id", s.Run)
	}
	return journal.WriteState(l.Dir, s)
}

func (l *Local) Summary(ctx context.Context, run string) (*Summary, error) {
	if !ValidRunID(run) {
		return nil, fmt.Errorf("%q is not a run id", run)
	}
	s, err := journal.ReadState(l.Dir, run)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return s, err
}

// SamplesFile is where Local keeps run's observation samples.
func SamplesFile(stateDir, run string) string {
	return filepath.Join(journal.RunDir(stateDir, run), "metrics.jsonl")
}

// AppendSamples is one write(2) in append mode: a crash leaves at most one
// torn line at the end, which Samples skips and the next append never glues
// to its first line.
func (l *Local) AppendSamples(ctx context.Context, run string, lines []byte) error {
	if !ValidRunID(run) {
		return fmt.Errorf("%q is not a run id", run)
	}
	if len(lines) == 0 {
		return nil
	}
	if lines[len(lines)-1] != '\n' {
		return errors.New("samples: lines must end with a newline")
	}
	l.samples.Lock()
	defer l.samples.Unlock()
	return modules.AppendLines(SamplesFile(l.Dir, run), lines)
}

func (l *Local) Samples(ctx context.Context, run string, fn func(line []byte) error) error {
	if !ValidRunID(run) {
		return fmt.Errorf("%q is not a run id", run)
	}
	return modules.ReadLines(SamplesFile(l.Dir, run), fn)
}

// backupDir is backups/RUN/NAME, the layout of modules/backup.
func (l *Local) backupDir(id string) (string, error) {
	run, name, ok := strings.Cut(id, "/")
	if !ok || run == "" || name == "" || run == "." || name == "." || strings.Contains(name, "/") || !filepath.IsLocal(run) || !filepath.IsLocal(name) {
		return "", fmt.Errorf("backup id %q is not RUN/NAME", id)
	}
	return filepath.Join(l.Dir, "backups", run, name), nil
}

const manifestName = "manifest.json"

func (l *Local) PutBackup(ctx context.Context, b Backup) error {
	dir, err := l.backupDir(b.ID)
	if err != nil {
		return err
	}
	if !json.Valid(b.Manifest) {
		return fmt.Errorf("backup %s: the manifest is not JSON", b.ID)
	}
	return journal.WriteFileAtomic(filepath.Join(dir, manifestName), b.Manifest, 0o600)
}

func (l *Local) Backups(ctx context.Context) ([]Backup, error) {
	paths, err := filepath.Glob(filepath.Join(l.Dir, "backups", "*", "*", manifestName))
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(filepath.Dir(p))
		run := filepath.Base(filepath.Dir(filepath.Dir(p)))
		var m struct {
			CreatedAt time.Time `json:"created_at"`
		}
		_ = json.Unmarshal(b, &m)
		out = append(out, Backup{ID: run + "/" + name, Run: run, Name: name, Created: m.CreatedAt, Manifest: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (l *Local) DeleteBackup(ctx context.Context, id string) error {
	dir, err := l.backupDir(id)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, manifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

type localLock struct {
	l  *Local
	jl *journal.Lock
}

// never is closed by no one: a local lock is held until released.
var never = make(chan struct{})

func (k *localLock) Holder() Holder        { return k.jl.Info }
func (k *localLock) Lost() <-chan struct{} { return never }
func (k *localLock) Release() error        { return k.jl.Release() }

func (k *localLock) Create(ctx context.Context) (Journal, error) {
	path := journal.Path(k.l.Dir, k.jl.Info.Run)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("run %s already exists in %s", k.jl.Info.Run, journal.RunsDir(k.l.Dir))
	}
	w, _, err := journal.Create(path)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (k *localLock) Open(ctx context.Context) (Journal, *Torn, error) {
	path := journal.Path(k.l.Dir, k.jl.Info.Run)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no run %s in %s: %w", k.jl.Info.Run, journal.RunsDir(k.l.Dir), ErrNoRun)
	}
	w, torn, err := journal.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return w, torn, nil
}
