package observe

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestSummarize_golden renders what `upgrader status` shows for a run with
// an open window and a failed one; the file ends with a torn line.
func TestSummarize_golden(t *testing.T) {
	ws, err := Summarize("testdata/summary/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 10, 3, 0, 0, time.UTC)
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.Text(now))
	}
	want, err := os.ReadFile("testdata/summary/want.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if len(ws) != 2 || ws[0].Open() || !ws[1].Open() {
		t.Errorf("windows %d, open: %v %v", len(ws), ws[0].Open(), ws[1].Open())
	}
}

func TestSummarize_missingFile(t *testing.T) {
	ws, err := Summarize("testdata/summary/none.jsonl")
	if err != nil || len(ws) != 0 {
		t.Errorf("missing file: %v, %d windows", err, len(ws))
	}
}
