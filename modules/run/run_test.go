package run

import (
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestRun_plan(t *testing.T) {
	modtest.RunPlanCases(t, "testdata/plan/*.txtar", &Run{})
}

func TestRun_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Run{})
}
