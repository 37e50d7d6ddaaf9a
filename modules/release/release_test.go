package release

import (
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestRelease_plan(t *testing.T) {
	modtest.RunPlanCases(t, "testdata/plan/*.txtar", &Release{})
}

func TestRelease_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Release{})
}

func TestRelease_pruned(t *testing.T) {
	cases := []struct {
		names        []string
		version, old string
		keep         int
		want         string
	}{
		{[]string{"4", "3", "2", "1"}, "4", "3", 2, "2 1"},
		{[]string{"4", "3", "2", "1"}, "4", "3", 5, ""},
		{[]string{"4", "3", "2", "1"}, "4", "1", 1, "3 2"}, // the previous one survives even when oldest
		{[]string{"3", "2", "1"}, "1", "3", 1, "2"},        // switching back to an old release
		{nil, "1", "", 1, ""},
	}
	for _, c := range cases {
		if got := strings.Join(pruned(c.names, c.version, c.old, c.keep), " "); got != c.want {
			t.Errorf("pruned(%v, %s, %s, %d) = %q, want %q", c.names, c.version, c.old, c.keep, got, c.want)
		}
	}
}
