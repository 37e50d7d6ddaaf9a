package upload

import (
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestUpload_plan(t *testing.T) {
	modtest.RunPlanCases(t, "testdata/plan/*.txtar", &Upload{})
}

func TestUpload_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Upload{})
}
