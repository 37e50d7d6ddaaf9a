package release

import (
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestRelease_plan(t *testing.T) {
	modtest.RunPlanCases(t, "testdata/plan/*.txtar", &Release{})
}

func TestRelease_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Release{})
}
