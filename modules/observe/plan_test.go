package observe

import (
	"context"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
)

// Plan describes the window in one line and probes the hosts read-only: a
// log that does not exist yet is a warning, not an error.
func TestPlan_summaryAndWarnings(t *testing.T) {
	w := newLocalWindow(t, `
  duration           = "72h"
  interval           = "1m"
  hosts              = [host.web]
  max_cpu_percent    = 85
  max_memory_percent = 90
  breach_for         = "5m"
  checks             = [check.regression]
  max_check_failures = 3
  log {
    path    = "/nonexistent/app.log"
    pattern = "ERROR|Exception"
  }`)
	w.env.PlanOnly = true
	p, err := New().Plan(context.Background(), &modules.Request{Config: w.cfg, Node: "observe.soak", Index: -1, Env: w.env})
	if err != nil {
		t.Fatal(err)
	}
	want := `observe web for 72h0m0s every 1m0s, bounds cpu <= 85%, memory <= 90%, /nonexistent/app.log "ERROR|Exception" <= 0, checks regression (3 failure(s) in a row) (breach_for 5m0s)`
	if p.Change != modules.Read || p.Summary != want {
		t.Errorf("plan %s %q\nwant %q", p.Change, p.Summary, want)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], `host "web": log /nonexistent/app.log does not exist yet`) {
		t.Errorf("warnings %q", p.Warnings)
	}
}
