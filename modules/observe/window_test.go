package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// localWindow is an observe node over one local host ("web") whose log is
// a temporary file.
type localWindow struct {
	env  *modtest.Env
	host *localHost
	log  string
	cfg  *modules.Config
	out  strings.Builder
}

func newLocalWindow(t *testing.T, body string) *localWindow {
	t.Helper()
	dir := t.TempDir()
	w := &localWindow{host: newLocalHost("web"), log: filepath.Join(dir, "app.log")}
	if err := os.WriteFile(w.log, []byte("ERROR before the window\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.env = &modtest.Env{ID: "run1", Dir: filepath.Join(dir, "state"),
		Targets: map[string]modules.Target{"web": w.host}, Checks: map[string]func(context.Context) error{}}
	src := strings.ReplaceAll("observe \"soak\" {\n"+body+"\n}\n", "LOG", w.log)
	w.cfg, _ = mustSettings(t, src, []string{"web"}, []string{"regression"})
	return w
}

func (w *localWindow) apply(ctx context.Context) (*modules.Outcome, error) {
	return New().Apply(ctx, &modules.Request{Config: w.cfg, Node: "observe.soak", Index: -1, Env: w.env, Log: &syncWriter{b: &w.out}})
}

func (w *localWindow) appendLog(t *testing.T, s string) {
	f, err := os.OpenFile(w.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Error(err)
	}
}

func (w *localWindow) records(t *testing.T) []*Record {
	var out []*Record
	err := ReadRecords(MetricsFile(w.env.Dir, w.env.ID), func(r *Record) error { out = append(out, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWindow_passesAtDeadline(t *testing.T) {
	w := newLocalWindow(t, `
  duration = "1200ms"
  interval = "250ms"
  hosts    = [host.web]
  max_memory_percent = 100
  log {
    path    = "LOG"
    pattern = "ERROR"
  }`)
	start := time.Now()
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, w.out.String())
	}
	if el := time.Since(start); el < 1200*time.Millisecond || el > 3*time.Second {
		t.Errorf("window took %s, want about 1.2s", el)
	}
	if !out.Outputs["passed"].True() {
		t.Error("passed = false")
	}
	recs := w.records(t)
	var samples int
	for _, r := range recs {
		if r.Type == RecordSample {
			samples++
			if r.Mem == nil || r.Load == nil || len(r.Disk) == 0 || r.LogMatches["LOG"] != 0 && r.LogMatches[w.log] != 0 {
				t.Errorf("incomplete sample: %+v", r)
			}
		}
	}
	if n, _ := out.Outputs["samples"].AsBigFloat().Int64(); int(n) != samples || samples < 3 || samples > 7 {
		// Baseline, every 250ms, deadline: 6, fewer when the machine is slow.
		t.Errorf("samples output %d, %d sample lines; want 3 to 7", n, samples)
	}
	if recs[0].Type != RecordWindow || recs[len(recs)-1].Type != RecordEnd || recs[len(recs)-1].Outcome != "passed" {
		t.Errorf("metrics.jsonl should open with the window and end with passed: first %+v last %+v", recs[0], recs[len(recs)-1])
	}
	t.Log(w.out.String())
	if recs[2].CPU == nil {
		t.Errorf("no cpu in the second sample: %+v", recs[2])
	}
}

func TestWindow_logErrorFails(t *testing.T) {
	w := newLocalWindow(t, `
  duration = "30s"
  interval = "200ms"
  hosts    = [host.web]
  log {
    path    = "LOG"
    pattern = "ERROR|panic"
  }`)
	go func() {
		time.Sleep(500 * time.Millisecond)
		w.appendLog(t, "INFO fine\n2026-11-28T10:00:00Z ERROR payment gateway timeout (order 42)   \n")
	}()
	start := time.Now()
	_, err := w.apply(context.Background())
	if err == nil {
		t.Fatal("window passed")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("failure took %s", time.Since(start))
	}
	for _, want := range []string{
		`log ` + w.log + ` on host "web": 1 line(s) match "ERROR|panic" (max_matches 0):`,
		"\n      2026-11-28T10:00:00Z ERROR payment gateway timeout (order 42)\n",
	} {
		if !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
	recs := w.records(t)
	if last := recs[len(recs)-1]; last.Outcome != "failed" {
		t.Errorf("last record %+v, want outcome failed", last)
	}
}

func TestWindow_approvedEndsEarly(t *testing.T) {
	w := newLocalWindow(t, `
  duration = "1h"
  interval = "200ms"
  hosts    = [host.web]`)
	time.AfterFunc(600*time.Millisecond, func() { w.env.Approve("observe.soak") })
	start := time.Now()
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("approval took %s to end the window", el)
	}
	if !out.Outputs["passed"].True() || !strings.Contains(out.Message, "approved") {
		t.Errorf("outcome %+v", out)
	}
	recs := w.records(t)
	if last := recs[len(recs)-1]; last.Outcome != "approved" {
		t.Errorf("last record %+v", last)
	}
}

// A window interrupted (upgrader killed) and applied again with the same
// checkpoints ends at the original deadline, and log lines written while it
// was down are counted once.
func TestWindow_resumeKeepsDeadline(t *testing.T) {
	w := newLocalWindow(t, `
  duration = "2s"
  interval = "200ms"
  hosts    = [host.web]
  log {
    path        = "LOG"
    pattern     = "ERROR"
    max_matches = 1
  }`)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err := w.apply(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted window: %v", err)
	}
	w.appendLog(t, "ERROR while upgrader was down\n")
	time.Sleep(300 * time.Millisecond)
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("resumed window: %v\n%s", err, w.out.String())
	}
	el := time.Since(start)
	if el < 2*time.Second || el > 2800*time.Millisecond {
		t.Errorf("resumed window ended %s after the start, want the original 2s deadline", el)
	}
	var last *Record
	windows := 0
	for _, r := range w.records(t) {
		if r.Type == RecordSample {
			last = r
		}
		if r.Type == RecordWindow {
			windows++
		}
	}
	if last == nil || last.LogMatches[w.log] != 1 {
		t.Errorf("last sample %+v: want exactly 1 match (counted once across the resume)", last)
	}
	if windows != 2 {
		t.Errorf("%d window records, want 2 (start, resume)", windows)
	}
	if !strings.Contains(w.out.String(), "resuming the window") {
		t.Errorf("output does not say it resumed:\n%s", w.out.String())
	}
	_ = out
}

// A deadline that passed while upgrader was down is judged from the samples
// on disk, and the output says so.
func TestWindow_deadlinePassedWhileDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breach bool
	}{{"passed", false}, {"failed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newLocalWindow(t, `
  duration = "800ms"
  interval = "200ms"
  hosts    = [host.web]
  max_load = 1000`)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			_, err := w.apply(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("interrupted window: %v", err)
			}
			if tc.breach {
				// A sample that reached the file but whose breach was never acted on.
				f, _ := os.OpenFile(MetricsFile(w.env.Dir, w.env.ID), os.O_WRONLY|os.O_APPEND, 0)
				fmt.Fprintf(f, `{"type":"sample","node":"observe.soak","host":"web","ts":%q,"load":1234.5}`+"\n", time.Now().UTC().Format(time.RFC3339Nano))
				f.Close()
			}
			time.Sleep(700 * time.Millisecond)
			out, err := w.apply(context.Background())
			if tc.breach {
				if err == nil || !strings.Contains(err.Error(), "passed while upgrader was down") || !strings.Contains(err.Error(), "load 1234.5 is above max_load 1000") {
					t.Fatalf("error = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.Message, "passed while upgrader was down; judged from the") {
				t.Errorf("message %q", out.Message)
			}
		})
	}
}

// An unreachable host is a failed check for its interval: tolerated up to
// max_check_failures in a row.
func TestWindow_unreachableHost(t *testing.T) {
	w := newLocalWindow(t, `
  duration           = "2s"
  interval           = "200ms"
  hosts              = [host.web]
  max_check_failures = 3`)
	time.AfterFunc(300*time.Millisecond, func() { w.host.down.Store(true) })
	time.AfterFunc(650*time.Millisecond, func() { w.host.down.Store(false) })
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("window failed on a short outage: %v", err)
	}
	unreach := 0
	for _, r := range w.records(t) {
		if r.Unreachable > 0 {
			unreach++
		}
	}
	if unreach == 0 || !out.Outputs["passed"].True() {
		t.Errorf("%d unreachable samples, outcome %+v", unreach, out)
	}

	w.host.down.Store(false)
	w2 := newLocalWindow(t, `
  duration           = "20s"
  interval           = "200ms"
  hosts              = [host.web]
  max_check_failures = 3`)
	time.AfterFunc(300*time.Millisecond, func() { w2.host.down.Store(true) })
	_, err = w2.apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `host "web" could not be sampled 3 interval(s) in a row`) {
		t.Fatalf("error = %v", err)
	}
}

func TestWindow_checksFail(t *testing.T) {
	w := newLocalWindow(t, `
  duration           = "20s"
  interval           = "200ms"
  checks             = [check.regression]
  max_check_failures = 2`)
	calls := 0
	w.env.Checks["regression"] = func(context.Context) error {
		calls++
		if calls >= 3 {
			return errors.New("GET http://198.51.100.2/api/ping: status 502, want 200")
		}
		return nil
	}
	_, err := w.apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `check "regression" failed 2 interval(s) in a row (max_check_failures 2): GET http://198.51.100.2/api/ping: status 502`) {
		t.Fatalf("error = %v", err)
	}
	if calls != 4 {
		t.Errorf("check ran %d times, want 4", calls)
	}
}

// After a gap longer than two intervals, a breach timer restarts: nobody
// knows whether the value stayed above its bound while upgrader was down.
func TestWindow_resumeRestartsBreachTimer(t *testing.T) {
	w := newLocalWindow(t, `
  duration           = "5s"
  interval           = "200ms"
  hosts              = [host.web]
  max_memory_percent = 0.1
  breach_for         = "1s"`)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	_, err := w.apply(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first part: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	resumed := time.Now()
	_, err = w.apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is above max_memory_percent 0.1%") {
		t.Fatalf("error = %v", err)
	}
	if el := time.Since(resumed); el < 900*time.Millisecond {
		t.Errorf("failed %s after the resume: the breach timer did not restart", el)
	}
	if !strings.Contains(w.out.String(), "breach timers restart") {
		t.Errorf("output does not say so:\n%s", w.out.String())
	}
}

// Applying a node whose window already ended (a retry after a failure)
// opens a new window instead of resuming the old one.
func TestWindow_retryAfterFailureIsNewWindow(t *testing.T) {
	w := newLocalWindow(t, `
  duration = "1s"
  interval = "200ms"
  hosts    = [host.web]
  log {
    path    = "LOG"
    pattern = "ERROR"
  }`)
	time.AfterFunc(300*time.Millisecond, func() { w.appendLog(t, "ERROR first attempt\n") })
	if _, err := w.apply(context.Background()); err == nil {
		t.Fatal("first attempt passed")
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retry took %s: it did not get a window of its own", el)
	}
	ws, _ := Summarize(MetricsFile(w.env.Dir, w.env.ID))
	if len(ws) != 1 || ws[0].Outcome != "passed" || ws[0].Samples != int(must64(out)) {
		t.Errorf("summary %+v, outputs %v", ws[0], out.Outputs)
	}
}

func must64(o *modules.Outcome) int64 {
	n, _ := o.Outputs["samples"].AsBigFloat().Int64()
	return n
}
