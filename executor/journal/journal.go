// Package journal owns a run's durable record: the append-only, fsynced
// journal.jsonl, its torn-line tolerant reader, the state-directory lock,
// run ids, approvals and the derived run state file.
//
// It imports nothing of upgrader's own: the executor decides what the
// events mean; this package only guarantees they are on disk, in order.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Event types (docs/DESIGN.md "Journal").
const (
	RunStarted     = "run_started"
	NodeStarted    = "node_started"
	ActionStarted  = "action_started"
	UndoState      = "undo_state"
	ActionFinished = "action_finished"
	NodeOutput     = "node_output"
	NodeFinished   = "node_finished"
	NodeFailed     = "node_failed"
	NodeSkipped    = "node_skipped"
	Checkpoint     = "checkpoint"
	UndoStarted    = "undo_started"
	UndoFinished   = "undo_finished"
	UndoFailed     = "undo_failed"
	Approved       = "approved"
	Rejected       = "rejected" // a gate was rejected (upgrader reject, or its timeout)
	Escalation     = "escalation"
	RunResumed     = "run_resumed"
	RunFinished    = "run_finished"
)

// Event is one journal line.
type Event struct {
	TS    time.Time       `json:"ts"`
	Type  string          `json:"type"`
	Node  string          `json:"node,omitempty"`
	Host  string          `json:"host,omitempty"`
	Index *int            `json:"index,omitempty"` // action index within a step
	Data  json.RawMessage `json:"data,omitempty"`
}

// Idx returns a pointer to i, for Event.Index.
func Idx(i int) *int { return &i }

// FileName is the journal's name inside a run directory.
const FileName = "journal.jsonl"

// Writer appends events to a journal. Append returns only once the event is
// fsynced; concurrent appends share one fsync (group commit), so parallel
// nodes do not queue behind each other's disk flushes.
type Writer struct {
	mu      sync.Mutex // guards f writes and written
	f       *os.File
	written uint64
	err     error // first write error: the journal is unusable after it

	syncMu sync.Mutex // serialises fsyncs
	synced uint64
	syncs  uint64 // fsyncs done (for the benchmark)
}

// Syncs returns how many fsyncs the writer has done.
func (w *Writer) Syncs() uint64 {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	return w.syncs
}

// Create opens path for appending, creating it (and its directory).
// A torn last line left by a crash is cut off first, so that the next event
// starts on a line of its own; the returned Torn says what was cut.
func Create(path string) (*Writer, *Torn, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, err
	}
	_, good, torn, err := read(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if torn != nil {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("journal %s: cutting torn last line: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &Writer{f: f}, torn, nil
}

// Append writes ev as one line and fsyncs it. TS is set when zero.
func (w *Writer) Append(ev Event) error {
	if ev.TS.IsZero() {
		ev.TS = time.Now().UTC()
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: encoding %s event: %w", ev.Type, err)
	}
	line = append(line, '\n')

	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	if _, err := w.f.Write(line); err != nil {
		w.err = fmt.Errorf("journal: write: %w", err)
		w.mu.Unlock()
		return w.err
	}
	w.written++
	mine := w.written
	w.mu.Unlock()

	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= mine {
		return nil // another append's fsync covered this line
	}
	// Let appenders that are ready run first, so that one fsync covers them too.
	runtime.Gosched()
	w.mu.Lock()
	upto := w.written
	w.mu.Unlock()
	if err := w.f.Sync(); err != nil {
		w.mu.Lock()
		w.err = fmt.Errorf("journal: fsync: %w", err)
		w.mu.Unlock()
		return w.err
	}
	w.synced = upto
	w.syncs++
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// Torn describes an incomplete last line (the process died mid-write).
type Torn struct {
	Offset int64  // where the torn line starts
	Bytes  []byte // what was there (at most 200 bytes kept)
}

func (t *Torn) String() string {
	return fmt.Sprintf("torn last line at byte %d ignored (%d bytes: %q)", t.Offset, len(t.Bytes), t.Bytes)
}

// Read returns every complete event of the journal at path. An incomplete
// last line (no newline: the process died mid-write) is reported in Torn
// and ignored. A complete line that does not decode, the last one included,
// is an error: the file was damaged, not cut short, and guessing what it
// held could repeat or skip an action.
func Read(path string) ([]Event, *Torn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	evs, _, torn, err := read(f)
	if err != nil {
		return nil, nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return evs, torn, nil
}

// EmptyError: a run's journal holds no run_started event.
type EmptyError struct {
	Path string
	Torn *Torn
}

func (e *EmptyError) Error() string {
	what := "is empty"
	if e.Torn != nil {
		what = "holds only a torn first line"
	}
	return fmt.Sprintf("journal %s %s: the run never recorded its start, so upgrader cannot tell what it did; nothing can be resumed or rolled back from it (check the hosts by hand, then remove the run's directory)", e.Path, what)
}

// ReadRun is Read for a run's whole journal: it must begin with run_started
// (a run's first event, fsynced before anything else happens).
func ReadRun(path string) ([]Event, *Torn, error) {
	evs, torn, err := Read(path)
	if err != nil {
		return nil, nil, err
	}
	if len(evs) == 0 {
		return nil, nil, &EmptyError{Path: path, Torn: torn}
	}
	if evs[0].Type != RunStarted {
		return nil, nil, fmt.Errorf("journal %s: the first event is %s, not %s: the journal is damaged", path, evs[0].Type, RunStarted)
	}
	return evs, torn, nil
}

// read decodes from the start of f; good is the offset after the last good line.
func read(f *os.File) (evs []Event, good int64, torn *Torn, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	lineNo := 0
	var pending *Torn // an incomplete line: only ever the last (ReadBytes stops at EOF)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			complete := line[len(line)-1] == '\n'
			var ev Event
			body := bytes.TrimSpace(line)
			if len(body) == 0 && complete {
				off += int64(len(line))
				good = off
				continue
			}
			if complete && (json.Unmarshal(body, &ev) != nil || ev.Type == "") {
				return nil, 0, nil, &CorruptError{Line: lineNo, Offset: off, Last: isLast(br)}
			}
			if !complete {
				keep := line
				if len(keep) > 200 {
					keep = keep[:200]
				}
				pending = &Torn{Offset: off, Bytes: append([]byte(nil), keep...)}
			} else {
				evs = append(evs, ev)
				good = off + int64(len(line))
			}
			off += int64(len(line))
		}
		if rerr == io.EOF {
			return evs, good, pending, nil
		}
		if rerr != nil {
			return nil, 0, nil, rerr
		}
	}
}

// CorruptError is a complete journal line that does not decode.
type CorruptError struct {
	Line   int
	Offset int64
	Last   bool // it is the last line
}

func (e *CorruptError) Error() string {
	where := "in the middle of the journal"
	if e.Last {
		where = "as the last line, complete (it ends with a newline, so it is not a write cut short by a crash)"
	}
	return fmt.Sprintf("line %d (byte %d): undecodable event %s: the journal is damaged; upgrader will not guess what it held. Restore the file from a copy, or inspect it and remove the line by hand if you know what it was", e.Line, e.Offset, where)
}

func isLast(br *bufio.Reader) bool {
	_, err := br.Peek(1)
	return err != nil
}

// syncDir fsyncs a directory so a newly created file's entry is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file, fsync and
// rename, so readers never see a half-written file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}
