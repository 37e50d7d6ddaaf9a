package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJournal_roundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs", "r", FileName)
	w, torn, err := Create(path)
	if err != nil || torn != nil {
		t.Fatalf("Create: %v %v", err, torn)
	}
	want := []Event{
		{Type: RunStarted, Data: json.RawMessage(`{"config_hash":"abc"}`)},
		{Type: NodeStarted, Node: "step.a"},
		{Type: ActionStarted, Node: "step.a", Host: "web", Index: Idx(0)},
		{Type: NodeFinished, Node: "step.a"},
	}
	for _, ev := range want {
		if err := w.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got, torn, err := Read(path)
	if err != nil || torn != nil {
		t.Fatalf("Read: %v %v", err, torn)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Node != want[i].Node || got[i].TS.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[2].Index == nil || *got[2].Index != 0 {
		t.Errorf("action index 0 lost: %+v", got[2])
	}
}

// The process died mid-write: the last line is incomplete. Read ignores and
// reports it; Create cuts it so that the next event starts a fresh line.
func TestJournal_tornLastLine(t *testing.T) {
	for _, name := range []string{"torn_midline.jsonl", "torn_garbage.jsonl"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			evs, torn, err := Read(path)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if torn == nil {
				t.Fatal("torn last line not reported")
			}
			if len(evs) != 2 || evs[1].Type != NodeStarted {
				t.Fatalf("complete events = %+v", evs)
			}
			w, torn2, err := Create(path)
			if err != nil || torn2 == nil {
				t.Fatalf("Create over torn journal: %v, torn %v", err, torn2)
			}
			if err := w.Append(Event{Type: NodeFinished, Node: "step.a"}); err != nil {
				t.Fatal(err)
			}
			w.Close()
			evs, torn, err = Read(path)
			if err != nil || torn != nil || len(evs) != 3 || evs[2].Type != NodeFinished {
				t.Fatalf("after repair: %v %v %+v", err, torn, evs)
			}
		})
	}
}

// Issue 13.12: a complete last line (it ends with a newline) that does not
// decode is damage, not a torn write: refused, never silently cut.
func TestJournal_corruptCompleteLastLineRefused(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "corrupt_last.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(path, src, 0o600)
	_, _, err = Read(path)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Line != 3 || !ce.Last || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Read: want a CorruptError naming line 3 as the last line, got %v", err)
	}
	if _, _, err := Create(path); err == nil {
		t.Fatal("Create appended to a damaged journal")
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(src) {
		t.Fatal("the damaged journal was changed")
	}
}

// Issue 13.12: an empty journal is a run that never recorded its start.
func TestReadRun_emptyRefused(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":     "",
		"blank":     "\n\n",
		"torn only": `{"ts":"2026-11-28T10:00:00Z","ty`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(path, []byte(content), 0o600)
		_, _, err := ReadRun(path)
		var ee *EmptyError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "never recorded its start") {
			t.Errorf("%s: ReadRun = %v, want an EmptyError", name, err)
		}
	}
	path := filepath.Join(dir, "nostart")
	os.WriteFile(path, []byte(`{"ts":"2026-11-28T10:00:00Z","type":"node_started","node":"step.a"}`+"\n"), 0o600)
	if _, _, err := ReadRun(path); err == nil || !strings.Contains(err.Error(), "first event is node_started") {
		t.Errorf("journal without run_started: %v", err)
	}
}

func TestJournal_corruptMiddleLineIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(path, []byte(`{"ts":"2026-11-28T10:00:00Z","type":"run_started"}
not json
{"ts":"2026-11-28T10:00:01Z","type":"node_started","node":"step.a"}
`), 0o600)
	if _, _, err := Read(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
}

func TestJournal_concurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	w, _, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := w.Append(Event{Type: NodeStarted, Node: "step.x", Index: Idx(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	evs, torn, err := Read(path)
	if err != nil || torn != nil || len(evs) != 400 {
		t.Fatalf("got %d events, torn %v, err %v", len(evs), torn, err)
	}
}

func TestLock_secondHolderRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "20261128T101500-abcd")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "20261128T101600-0001")
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Acquire: %v", err)
	}
	me := Me("")
	for _, want := range []string{me.User, me.Host, "pid", "20261128T101500-abcd", "since"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q does not name %q", err, want)
		}
	}
	if le.Stale {
		t.Error("our own live lock judged stale")
	}
	if _, err := Unlock(dir, false); err == nil {
		t.Error("Unlock cleared a live holder's lock")
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "20261128T101600-0001")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLock_staleDetectedAndCleared(t *testing.T) {
	dir := t.TempDir()
	me := Me("20261128T101500-abcd")
	me.PID = deadPID(t)
	if _, err := acquire(dir, me); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(dir, "20261128T101600-0001")
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || !strings.Contains(err.Error(), "upgrader unlock") {
		t.Fatalf("want a stale LockedError suggesting unlock, got %v", err)
	}
	// Another run may not take over; the same run (resume) may.
	if _, err := TakeOver(dir, "20261128T101600-0001"); err == nil {
		t.Fatal("another run took over a stale lock")
	}
	l, err := TakeOver(dir, "20261128T101500-abcd")
	if err != nil {
		t.Fatalf("TakeOver by the same run: %v", err)
	}
	if l.Info.PID != os.Getpid() {
		t.Errorf("lock pid = %d", l.Info.PID)
	}
	l.Release()

	me.PID = deadPID(t)
	acquire(dir, me)
	held, err := Unlock(dir, false)
	if err != nil || held.Run != me.Run {
		t.Fatalf("Unlock stale: %v %+v", err, held)
	}
	if _, err := ReadLock(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock still there: %v", err)
	}
}

// After a reboot another process may have the holder's pid: its start time differs.
func TestLock_reusedPIDIsStale(t *testing.T) {
	li := Me("20261128T101500-abcd")
	if li.Start == "" {
		t.Skip("no /proc start time here")
	}
	if IsStale(li) {
		t.Fatal("our own lock judged stale")
	}
	li.Start = "1"
	if !IsStale(li) {
		t.Fatal("a live pid with another start time was taken for the holder")
	}
}

func TestLock_otherMachineNeverStale(t *testing.T) {
	li := Me("20261128T101500-abcd")
	li.Host = "some-other-machine.invalid"
	li.PID = deadPID(t)
	if IsStale(li) {
		t.Fatal("a lock of another machine was judged stale")
	}
}

func TestRunID_sortable(t *testing.T) {
	base := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 5; i++ {
		id := NewRunID(base.Add(time.Duration(4-i) * time.Second))
		if !ValidRunID(id) {
			t.Fatalf("%q is not a valid run id", id)
		}
		ids = append(ids, id)
	}
	if !strings.HasPrefix(ids[4], "20261128T101500.000-") {
		t.Errorf("id = %s", ids[4])
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	for i := range ids {
		if sorted[i] != ids[4-i] {
			t.Fatalf("run ids do not sort by time: %v", sorted)
		}
	}
}

func TestApproval_roundTrip(t *testing.T) {
	dir := t.TempDir()
	run := "20261128T101500-abcd"
	if _, err := Approve(dir, run, "gate.go", "ops@box"); err == nil {
		t.Fatal("approved a run that does not exist")
	}
	os.MkdirAll(RunDir(dir, run), 0o700)
	os.WriteFile(Path(dir, run), nil, 0o600)
	os.MkdirAll(RunDir(dir, "20261128T101600-beef"), 0o700) // never started: no journal
	if _, err := Approve(dir, run, "../x", "ops@box"); err == nil {
		t.Fatal("accepted a path as node")
	}
	if a, _ := ReadApproval(dir, run, "gate.go"); a != nil {
		t.Fatal("approval before approve")
	}
	if _, err := Approve(dir, run, "gate.go", "ops@box"); err != nil {
		t.Fatal(err)
	}
	a, err := ReadApproval(dir, run, "gate.go")
	if err != nil || a == nil || a.By != "ops@box" {
		t.Fatalf("ReadApproval = %+v, %v", a, err)
	}
	runs, _ := Runs(dir)
	if len(runs) != 1 || runs[0] != run {
		t.Fatalf("Runs = %v", runs)
	}
}

// FuzzRead: whatever is in a journal file, Read returns events or an error,
// never panics, a torn tail is never counted as an event, and only a last
// line without a newline may be torn. Seeds: testdata/*.jsonl and
// testdata/fuzz/FuzzRead.
//
//	go test ./executor/journal -run XXX -fuzz FuzzRead -fuzztime 30s
func FuzzRead(f *testing.F) {
	for _, name := range []string{"torn_midline.jsonl", "torn_garbage.jsonl", "corrupt_last.jsonl"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(b)
	}
	f.Add([]byte("{\"ts\":\"2026-11-28T10:00:00Z\",\"type\":\"run_started\"}\n\n\n"))
	f.Add([]byte("\x00\xff{"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "j.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		evs, torn, err := Read(path)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if ev.Type == "" {
				t.Fatalf("event without a type: %+v", ev)
			}
		}
		if torn != nil && torn.Offset > int64(len(data)) {
			t.Fatalf("torn offset %d beyond %d bytes", torn.Offset, len(data))
		}
		if torn != nil && bytes.IndexByte(data[torn.Offset:], '\n') >= 0 {
			t.Fatalf("a complete line was taken for torn at byte %d", torn.Offset)
		}
		if _, _, rerr := ReadRun(path); rerr == nil && (len(evs) == 0 || evs[0].Type != RunStarted) {
			t.Fatal("ReadRun accepted a journal that does not start with run_started")
		}
		// Create repairs what Read tolerates, and appending then reads back clean.
		w, _, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(Event{Type: RunFinished}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		evs2, torn2, err := Read(path)
		if err != nil || torn2 != nil || len(evs2) != len(evs)+1 {
			t.Fatalf("after repair: %v %v %d events, want %d", err, torn2, len(evs2), len(evs)+1)
		}
	})
}
