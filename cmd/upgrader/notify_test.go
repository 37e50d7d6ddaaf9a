package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/notify"
)

type received struct {
	path, auth string
	body       map[string]any
	raw        string
}

// A real run notifies a real HTTP receiver of its events, in order, with
// no secret in any body; a receiver that answers 500 and one that never
// answers cost the run at most their timeout once, and their failed
// deliveries are in status.
func TestNotify_realRunReceiverGetsEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []received
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("not JSON: %q", b)
		}
		mu.Lock()
		got = append(got, received{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: m, raw: string(b)})
		mu.Unlock()
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	}))
	defer bad.Close()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	bed := startBed(t, "web")
	if _, err := bed.Host("web").Exec(context.Background(), "mkdir -p /tmp/app && chown deploy /tmp/app"); err != nil {
		t.Fatal(err)
	}
	dir := testdataDir(t, bed, "notify", "main.hcl", "app.conf")
	stateDir := filepath.Join(dir, ".upgrader")
	go func() {
		run := waitForGate(t, stateDir, "gate.go", 60*time.Second)
		if code, out, errs := upgrader("approve", dir, run, "go"); code != 0 {
			t.Errorf("approve: %d %s %s", code, out, errs)
		}
	}()
	vars := []string{"-var", "ok_url=" + ok.URL, "-var", "bad_url=" + bad.URL, "-var", "hang_url=" + hang.URL}
	code, out, errs := upgrader(append([]string{"apply", "-auto-approve", "-no-color", dir}, vars...)...)
	returned := time.Now()
	if code != exitFailedRolledBack {
		t.Fatalf("apply: exit %d, want %d\n%s\n%s", code, exitFailedRolledBack, out, errs)
	}
	run, _ := journal.Latest(stateDir)
	evs, _, err := journal.Read(journal.Path(stateDir, run))
	if err != nil {
		t.Fatal(err)
	}
	var finished journal.Event
	for _, ev := range evs {
		if ev.Type == journal.RunFinished {
			finished = ev
		}
	}
	if finished.Type == "" {
		t.Fatal("no run_finished in the journal")
	}
	// The receivers that fail cost the end of the run one timeout (2s), not their retries.
	if d := returned.Sub(finished.TS); d > 2*time.Second+1500*time.Millisecond {
		t.Errorf("apply returned %s after run_finished; a receiver down or hanging may cost one timeout (2s)", d)
	}

	mu.Lock()
	defer mu.Unlock()
	var order []string
	for _, r := range got {
		if strings.Contains(r.raw, "canary-notify-9931") || strings.Contains(r.raw, ok.URL) {
			t.Errorf("a payload holds a secret: %s", r.raw)
		}
		if r.path == "/json" {
			order = append(order, r.body["notify_event"].(string))
			if r.auth != "Bearer canary-notify-9931" {
				t.Errorf("json receiver got Authorization %q", r.auth)
			}
			if r.body["run"] != run {
				t.Errorf("event without the run id: %s", r.raw)
			}
		}
	}
	want := "run_started waiting approved node_failed rollback_started run_finished"
	if strings.Join(order, " ") != want {
		t.Errorf("json receiver got\n %s\nwant\n %s", strings.Join(order, " "), want)
	}
	var slack []string
	for _, r := range got {
		if r.path == "/slack" {
			slack = append(slack, r.body["text"].(string))
		}
	}
	if len(slack) != 2 || !strings.Contains(slack[1], "run finished: rolled_back") || !strings.Contains(slack[0], "rolling back") {
		t.Errorf("slack receiver got %q", slack)
	}
	// Each failed delivery is reported: in status (human and -json).
	code, st, _ := upgrader("status", "-no-color", dir, run)
	if code != 0 || !strings.Contains(st, "Notifications not delivered") || !strings.Contains(st, `notify "down": run_started`) ||
		!strings.Contains(st, "500 Internal Server Error") || !strings.Contains(st, `notify "hang": run_finished`) {
		t.Errorf("status does not list the failed deliveries:\n%s", st)
	}
	evs, _, _ = journal.Read(journal.Path(stateDir, run))
	inJournal := 0
	for _, ev := range evs {
		if ev.Type == notify.NotifyFailed {
			inJournal++
		}
	}
	if inJournal != 3 {
		t.Errorf("%d notify_failed events in the journal, want 3", inJournal)
	}
	fails := notify.ReadFailures(stateDir, run)
	if len(fails) != 3 {
		t.Errorf("%d failed deliveries, want 3 (down: run_started, run_finished; hang: run_finished): %+v", len(fails), fails)
	}
	for _, f := range fails {
		// retried (3 attempts, or fewer when the run ended first and the receiver's one timeout ran out)
		if f.Notify == "down" && f.Event == "run_started" && f.Attempts < 2 {
			t.Errorf("down/run_started: %d attempts, want retries", f.Attempts)
		}
	}
}
