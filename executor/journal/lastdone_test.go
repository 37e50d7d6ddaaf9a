package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLastDone: the newest run that finished done wins; a torn last line
// after run_finished is ignored; failed and running runs do not count.
func TestLastDone(t *testing.T) {
	state := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := func(run string, lines ...string) {
		t.Helper()
		dir := RunDir(state, run)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	finished := func(ts time.Time, outcome string) string {
		b, _ := json.Marshal(map[string]any{"ts": ts, "type": RunFinished, "data": map[string]string{"outcome": outcome}})
		return string(b)
	}
	if got := LastDone(state); got != "" {
		t.Fatalf("no runs: %q", got)
	}
	end("r2", `{"ts":"2026-01-01T02:00:00Z","type":"run_started"}`, finished(t0.Add(2*time.Hour), "done"))
	end("r5", finished(t0.Add(5*time.Hour), "rolled_back"))
	end("r4", finished(t0.Add(4*time.Hour), "done"), `{"ts":"2026-01-01T04:00:01Z","ty`)
	end("r6", `{"ts":"2026-01-01T06:00:00Z","type":"run_started"}`)
	if got := LastDone(state); got != "r4" {
		t.Fatalf("LastDone = %q, want r4 (its torn last line is ignored)", got)
	}
}
