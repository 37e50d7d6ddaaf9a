package views

import (
	"fmt"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/executor"
)

// TestPlan_collapsesAgreeingHosts: 199 hosts that plan the same change are
// one line naming a few of them; the outlier keeps its own line; the
// totals still count every host.
func TestPlan_collapsesAgreeingHosts(t *testing.T) {
	n := &executor.PlanNode{Addr: "step.upgrade", Kind: "step"}
	for i := 1; i <= 200; i++ {
		h := fmt.Sprintf("web-%03d", i)
		n.Hosts = append(n.Hosts, h)
		sum := "release version = 2.0.0 (current 1.0.0)"
		if i == 7 {
			sum = "release version = 2.0.0 (current 0.9.0)"
		}
		n.Actions = append(n.Actions, &executor.PlanAction{Kind: "release", Host: h, Index: 0, Change: "~", Summary: sum, Undo: "current points back"})
	}
	var b strings.Builder
	Plan(&b, &executor.Plan{Dir: "/d", Nodes: []*executor.PlanNode{n}}, Style{})
	out := b.String()
	for _, want := range []string{
		"~ 199 hosts  #1 release version = 2.0.0 (current 1.0.0)",
		"on web-001, web-002, web-003, ..., web-199, web-200",
		"~ web-007    #1 release version = 2.0.0 (current 0.9.0)",
		"step.upgrade  hosts: 200 (web-001, web-002, web-003, ..., web-199, web-200)",
		"200 to change",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines > 20 {
		t.Errorf("%d lines for 200 hosts:\n%s", lines, out)
	}
}
