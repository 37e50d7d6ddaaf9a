package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/report"
)

// Only an approver may decide a gate with approvers; a rejection needs a
// reason, fails the run at the gate, and status and the report say who and why.
func TestReject_approversAndReason(t *testing.T) {
	dir := configDir(t, nil, "gate_approvers.hcl")
	stateDir := filepath.Join(dir, ".upgrader")
	done := make(chan struct{})
	go func() {
		defer close(done)
		run := waitForGate(t, stateDir, "gate.go", 30*time.Second)
		if code, _, errs := upgrader("approve", dir, run, "go"); code != exitInvalid || !strings.Contains(errs, "gate.go may be decided only by bob") {
			t.Errorf("approve by a non-approver: exit %d %s", code, errs)
		}
		if code, _, errs := upgrader("reject", dir, run, "go", "-as", "bob"); code != exitInvalid || !strings.Contains(errs, "-reason") {
			t.Errorf("reject without a reason: exit %d %s", code, errs)
		}
		if code, out, errs := upgrader("reject", dir, run, "go", "-as", "bob", "-reason", "not during the sale"); code != 0 || !strings.Contains(out, "Rejected gate.go") {
			t.Errorf("reject: exit %d %s %s", code, out, errs)
		}
		if code, _, errs := upgrader("approve", dir, run, "go", "-as", "bob"); code != exitInvalid || !strings.Contains(errs, "rejected already by") {
			t.Errorf("approve after reject: exit %d %s", code, errs)
		}
	}()
	code, out, errs := upgrader("apply", "-auto-approve", "-no-color", dir)
	<-done
	if code != exitFailedRolledBack {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "REJECTED  gate.go by bob") {
		t.Errorf("the live view does not show the rejection:\n%s", out)
	}
	run, _ := journal.Latest(stateDir)
	_, st, _ := upgrader("status", "-no-color", dir, run)
	if !strings.Contains(st, "rejected by bob") || !strings.Contains(st, "not during the sale") {
		t.Errorf("status does not say who rejected and why:\n%s", st)
	}
	html, err := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), report.FileName))
	if err != nil || !strings.Contains(string(html), "rejected") || !strings.Contains(string(html), "not during the sale") {
		t.Errorf("the report does not show the rejection (%v)", err)
	}
}
