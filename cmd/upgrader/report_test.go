package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/internal/testbrowser"
	"github.com/upgrader-dev/upgrader/modules/observe"
	"github.com/upgrader-dev/upgrader/report"
)

// A real run on two test hosts (backup, a gate approved from outside, a
// step on both hosts, an observation window whose log bound breaches, the
// rollback) leaves runs/RUN/report.html; a real headless Chromium opens it
// without errors and finds a bar per node and host, a chart per metric and
// host, and the breach with its deciding sample.
func TestReport_realRunInChromium(t *testing.T) {
	if testbrowser.Path() == "" && os.Getenv("CI") != "true" {
		t.Skip("no chromium (apt-get install chromium)")
	}
	bed := startBed(t, "web", "api")
	for _, h := range []string{"web", "api"} {
		if _, err := bed.Host(h).Exec(context.Background(), "mkdir -p /opt/app && touch /var/log/app/app.log && chown deploy /opt/app /var/log/app/app.log"); err != nil {
			t.Fatal(err)
		}
	}
	dir := testdataDir(t, bed, "report", "main.hcl", "app.conf")
	stateDir := filepath.Join(dir, ".upgrader")
	go func() {
		run := waitForGate(t, stateDir, "gate.go", 60*time.Second)
		if code, out, errs := upgrader("approve", dir, run, "go"); code != 0 {
			t.Errorf("approve: %d %s %s", code, out, errs)
		}
	}()
	code, out, errs := upgrader("apply", "-auto-approve", "-no-color", dir)
	if code != exitFailedRolledBack {
		t.Fatalf("apply: exit %d, want %d (the window breaches, the run rolls back)\n%s\n%s", code, exitFailedRolledBack, out, errs)
	}
	run, err := journal.Latest(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(journal.RunDir(stateDir, run), report.FileName)
	if !strings.Contains(out, "Report: "+path) {
		t.Errorf("apply does not name its report %s:\n%s", path, out)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(html), "canary-report-secret-4711") {
		t.Fatal("the report holds the sensitive variable's value")
	}
	if _, err := os.Stat(filepath.Join(journal.RunDir(stateDir, run), report.PlanFileName)); err != nil {
		t.Errorf("apply kept no plan: %v", err)
	}
	// `upgrader report -o` writes the same page elsewhere.
	other := filepath.Join(t.TempDir(), "r.html")
	if code, out, errs := upgrader("report", dir, run, "-o", other); code != 0 || !strings.Contains(out, other) {
		t.Fatalf("report -o: %d %s %s", code, out, errs)
	}

	// What the page must show, counted from the run's own files.
	wantSeries := map[string]bool{}
	if err := observe.ReadRecords(observe.MetricsFile(stateDir, run), func(r *observe.Record) error {
		if r.Type != observe.RecordSample {
			return nil
		}
		add := func(m string) { wantSeries[r.Host+" "+m] = true }
		if r.CPU != nil {
			add("cpu")
		}
		if r.Mem != nil {
			add("memory")
		}
		if r.Load != nil {
			add("load")
		}
		for p := range r.Disk {
			add("disk " + p)
		}
		for l := range r.LogMatches {
			add("log " + l)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	p := testbrowser.Open(t, path)
	shot := p.Screenshot("report-real-run.png")
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// backup, gate, the step on each of its 2 hosts, the window: 5 run bars; the step's undo on both hosts.
	if n := p.Count("#timeline rect.bar:not(.undo)"); n != 5 {
		t.Errorf("timeline: %d run bars, want 5 (screenshot %s)", n, shot)
	}
	if n := p.Count("#timeline rect.bar.undo"); n != 2 {
		t.Errorf("timeline: %d undo bars, want 2", n)
	}
	if n := p.Count("#timeline polygon.gate"); n != 1 {
		t.Errorf("timeline: %d gate decisions, want 1", n)
	}
	if n := p.Count(".chart path.series"); n != len(wantSeries) {
		t.Errorf("charts: %d series, want %d (%v)", n, len(wantSeries), wantSeries)
	}
	if n := p.Count(`.chart[data-title="log /var/log/app/app.log on web"] circle.breach`); n < 1 {
		t.Errorf("no breach marker on web's log chart")
	}
	if n := p.Count(".chart circle.deciding"); n < 1 {
		t.Errorf("no deciding sample marked")
	}
	if n := p.Count(".chart line.bound"); n < 2 {
		t.Errorf("%d bound lines, want one per bounded chart", n)
	}
	text := testbrowser.Eval[string](p, "document.body.innerText")
	for _, want := range []string{"rolled_back", "approved", "deciding sample: log /var/log/app/app.log", "(sensitive)", "Rollback path", "sha256"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(wantSeries, "", " ")
		t.Logf("series expected: %s", b)
	}
}
