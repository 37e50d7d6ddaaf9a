package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNewRunID_sameSecondInOrder: runs started in the same second sort in
// start order, so Latest is the newest (it was decided by the random suffix,
// and `upgrader rollback` picked an older run).
func TestNewRunID_sameSecondInOrder(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 12, 4, 18, 29, 24, 0, time.UTC)
	var last string
	for i := range 20 {
		id := NewRunID(base.Add(time.Duration(i) * 40 * time.Millisecond))
		if !ValidRunID(id) {
			t.Fatalf("%q is not a valid run id", id)
		}
		if last != "" && id <= last {
			t.Fatalf("%q sorts before or with the earlier %q", id, last)
		}
		last = id
		if err := os.MkdirAll(filepath.Join(RunsDir(dir), id), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(Path(dir, id), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Latest(dir); err != nil || got != last {
		t.Errorf("Latest = %q, %v; want %q", got, err, last)
	}
	// ids of older versions (no milliseconds) still read, and sort first
	if !ValidRunID("20261204T182924-d838") || "20261204T182924-d838" >= NewRunID(base) {
		t.Errorf("an id without milliseconds is refused or sorts after one with them")
	}
	for _, bad := range []string{"20261204T182924.12-d838", "20261204T182924-d83", "../x", ""} {
		if ValidRunID(bad) {
			t.Errorf("%q taken for a run id", bad)
		}
	}
}
