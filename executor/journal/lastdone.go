package journal

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"time"
)

// LastDone returns the id of the newest run whose journal ends with
// run_finished outcome "done" ("" when none): the run whose backups pruning
// keeps (modules.Env.ProtectedRun). Unreadable journals are skipped.
func LastDone(stateDir string) string {
	runs, err := os.ReadDir(RunsDir(stateDir))
	if err != nil {
		return ""
	}
	var best string
	var bestTS time.Time
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		ts, ok := finishedDone(Path(stateDir, r.Name()))
		if ok && (best == "" || ts.After(bestTS) || (ts.Equal(bestTS) && r.Name() > best)) {
			best, bestTS = r.Name(), ts
		}
	}
	return best
}

// finishedDone reads only a journal's last complete line (a torn one is
// skipped): journals of long runs are large, and only the end says done.
func finishedDone(path string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return time.Time{}, false
	}
	const window = 64 << 10
	off := max(fi.Size()-window, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return time.Time{}, false
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var ev Event
		if json.Unmarshal(lines[i], &ev) != nil {
			continue // a torn last line
		}
		var d struct {
			Outcome string `json:"outcome"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		return ev.TS, ev.Type == RunFinished && d.Outcome == "done"
	}
	return time.Time{}, false
}
