package observe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestParse_cases parses captured sampling output (testdata/parse) and
// compares the sample, or the error, with the case's want section.
func TestParse_cases(t *testing.T) {
	eachCase(t, "testdata/parse/*.txtar", func(t *testing.T, _ []byte, sec map[string][]byte) {
		req := &probeReq{Nonce: "n"}
		for _, p := range strings.Split(strings.TrimSpace(string(sec["paths"])), "\n") {
			req.DiskPaths = append(req.DiskPaths, p)
		}
		raw, err := parseProbe(bytes.NewReader(sec["output"]), req)
		var want map[string]any
		if err := json.Unmarshal(sec["want"], &want); err != nil {
			t.Fatalf("want: %v", err)
		}
		if e, ok := want["error"]; ok {
			if err == nil || !strings.Contains(err.Error(), e.(string)) {
				t.Fatalf("error = %v, want one containing %q", err, e)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// Both through map[string]any: the same key order and number format.
		var got map[string]any
		b, _ := json.Marshal(raw)
		_ = json.Unmarshal(b, &got)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("sample\n got %s\nwant %s", gotJSON, wantJSON)
		}
	})
}

// TestCPUPercent uses two /proc/stat lines read one second apart on a
// machine whose two cores were busy.
func TestCPUPercent(t *testing.T) {
	b1, t1, ok1 := parseStat("cpu  27108 0 11971 86067 2582 0 201 2397 0 0")
	b2, t2, ok2 := parseStat("cpu  27239 0 12038 86067 2583 0 202 2400 0 0")
	if !ok1 || !ok2 {
		t.Fatal("stat lines not parsed")
	}
	if got, ok := cpuPercent(b1, t1, b2, t2); !ok || got != 99.5 {
		t.Errorf("cpu = %v, %v; want 99.5", got, ok)
	}
	// A counter reset (host rebooted between samples) gives no value.
	if _, ok := cpuPercent(b2, t2, b1, t1); ok {
		t.Error("cpu from a counter going backwards")
	}
	if _, _, ok := parseStat("cpu0 1 2 3 4 5"); ok {
		t.Error("per-core line taken for the aggregate")
	}
}
