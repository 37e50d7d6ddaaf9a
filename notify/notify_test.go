package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// While a window is open, a digest with its latest metrics goes out every
// `digest`; a sensitive value in an event's text never reaches the body.
func TestNotifier_digestAndCanary(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()

	stateDir, run := t.TempDir(), "20261201T000000-abcd"
	if err := os.MkdirAll(journal.RunDir(stateDir, run), 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	dl := now.Add(72 * time.Hour)
	f, err := os.Create(observe.MetricsFile(stateDir, run))
	if err != nil {
		t.Fatal(err)
	}
	cpu := 12.5
	enc := json.NewEncoder(f)
	enc.Encode(&observe.Record{Type: observe.RecordWindow, Node: "observe.soak", TS: now, Deadline: &dl, Interval: "1m0s", Hosts: []string{"standby"}})
	enc.Encode(&observe.Record{Type: observe.RecordSample, Node: "observe.soak", TS: now, Host: "standby", CPU: &cpu})
	f.Close()

	secret := "canary-unit-5512"
	cfg := &lang.Config{
		Variables: map[string]*lang.Variable{"token": {Name: "token", Sensitive: true, Value: cty.StringVal(secret).Mark(lang.SensitiveMark)}},
		Notifies: map[string]*lang.Notify{"n": {Name: "n", URL: srv.URL, Format: "slack", Timeout: 2 * time.Second,
			On: []string{"node_failed", "digest"}, Digest: 300 * time.Millisecond}},
		NotifyOrder: []string{"n"},
	}
	nt := New(Options{StateDir: stateDir, Config: cfg})
	nt.Event(executor.Event{Type: journal.RunStarted, Run: run})
	nt.Event(executor.Event{Type: journal.NodeFailed, Run: run, Node: "check.smoke", Error: "token " + secret + " rejected"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	nt.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) < 3 {
		t.Fatalf("%d bodies, want the failure and at least 2 digests: %q", len(bodies), bodies)
	}
	if !strings.Contains(bodies[0], "check.smoke failed") || !strings.Contains(bodies[0], "(sensitive)") {
		t.Errorf("first body %s", bodies[0])
	}
	digests := 0
	for _, b := range bodies {
		if strings.Contains(b, secret) {
			t.Errorf("a body holds the secret: %s", b)
		}
		if strings.Contains(b, "digest") && strings.Contains(b, "observe.soak: open") && strings.Contains(b, "cpu 12.5%") {
			digests++
		}
	}
	if digests < 2 {
		t.Errorf("%d digests with the window's latest metrics: %q", digests, bodies)
	}
	if len(nt.Failures()) != 0 {
		t.Errorf("failures: %+v", nt.Failures())
	}
}
