package observe

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// BenchmarkSummarize72h: what `upgrader status` reads of a 72 h window at
// 1 min on 10 hosts (43,200 samples, ~10 MB).
func BenchmarkSummarize72h(b *testing.B) {
	var buf bytes.Buffer
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	dl := t0.Add(72 * time.Hour)
	json.NewEncoder(&buf).Encode(&Record{Type: RecordWindow, Node: "observe.soak", TS: t0, Deadline: &dl, Interval: "1m0s"})
	cpu, mem, load := 12.5, 41.2, 0.31
	for m := 0; m < 72*60; m++ {
		for h := 0; h < 10; h++ {
			r := &Record{Type: RecordSample, Node: "observe.soak", TS: t0.Add(time.Duration(m) * time.Minute), Host: fmt.Sprintf("app%02d", h),
				CPU: &cpu, Mem: &mem, Load: &load, Disk: map[string]float64{"/": 55.1, "/var": 61},
				LogMatches: map[string]int{"/var/log/app/app.log": 0}, CheckFailures: map[string]int{"regression": 0}}
			if m%97 == 0 {
				r.Over = []string{"cpu"}
			}
			json.NewEncoder(&buf).Encode(r)
		}
	}
	data := buf.Bytes()
	lines := func(fn func([]byte) error) error {
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if err := fn(data[:i+1]); err != nil {
				return err
			}
			data = data[i+1:]
		}
		return nil
	}
	all := data
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data = all
		ws, err := SummarizeFrom(lines)
		if err != nil || len(ws) != 1 || ws[0].Samples != 43200 {
			b.Fatalf("%v %+v", err, ws)
		}
	}
}

// The fast path of SummarizeFrom (plain sample lines counted, not decoded)
// gives what decoding every record gives: windows, retries, resumed
// windows, hostless samples, breaches, foreign and torn lines.
func TestSummarizeFrom_sameAsDecodingAll(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	dl := t0.Add(time.Hour)
	cpu := 50.0
	for _, node := range []string{"observe.a", "observe.b"} {
		enc.Encode(&Record{Type: RecordWindow, Node: node, TS: t0, Deadline: &dl, Interval: "1m0s", Hosts: []string{"web", "db"}})
		for m := 0; m < 30; m++ {
			for _, h := range []string{"web", "db", ""} {
				r := &Record{Type: RecordSample, Node: node, TS: t0.Add(time.Duration(m) * time.Minute), Host: h, CPU: &cpu}
				if (m+len(h))%7 == 0 {
					r.Over = []string{"cpu"}
				}
				enc.Encode(r)
			}
			if m == 10 {
				enc.Encode(&Record{Type: RecordWindow, Node: node, TS: t0, Deadline: &dl, Resumed: true})
			}
			if m == 20 && node == "observe.b" {
				enc.Encode(&Record{Type: RecordEnd, Node: node, TS: t0, Outcome: "failed"})
				enc.Encode(&Record{Type: RecordWindow, Node: node, TS: t0.Add(time.Hour), Deadline: &dl}) // a retry
			}
		}
	}
	buf.WriteString("{\"type\":\"sample\",\"node\":\"observe.c\",\"ts\":\"x\"}\nnot json\n{\"type\":\"sample\",\"node\":\"observe.a\",\"ts\":\"2026")
	golden, _ := os.ReadFile("testdata/summary/metrics.jsonl")
	for name, data := range map[string][]byte{"generated": buf.Bytes(), "golden": golden} {
		lines := func(fn func([]byte) error) error {
			for _, l := range bytes.SplitAfter(data, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					if err := fn(l); err != nil {
						return err
					}
				}
			}
			return nil
		}
		fast, err := SummarizeFrom(lines)
		if err != nil {
			t.Fatal(err)
		}
		byNode := map[string]*WindowSummary{}
		ReadRecordsFrom(lines, func(r *Record) error { return summarizeRecord(byNode, r) })
		var slow []*WindowSummary
		for _, w := range fast {
			slow = append(slow, byNode[w.Node])
		}
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(slow)
		if len(byNode) != len(fast) || string(a) != string(b) {
			t.Errorf("%s: fast path\n%s\ndecoding all\n%s", name, a, b)
		}
	}
}
