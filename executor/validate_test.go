package executor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/langtest"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/httpcheck"
	"github.com/upgrader-dev/upgrader/modules/run"
	"github.com/upgrader-dev/upgrader/modules/upload"
	"github.com/zclconf/go-cty/cty"
)

// migrateStub stands in for a database-changing node kind (modules.Changes)
// so the interlock is tested whatever migrate module exists; it only
// declares what it changes and is never planned or applied here.
type migrateStub struct{}

func (migrateStub) Kind() string { return "migrate" }
func (migrateStub) Spec() hcldec.Spec {
	return hcldec.ObjectSpec{
		"database": &hcldec.AttrSpec{Name: "database", Type: cty.DynamicPseudoType, Required: true},
		"dir":      &hcldec.AttrSpec{Name: "dir", Type: cty.String, Required: true},
	}
}
func (migrateStub) Outputs() map[string]cty.Type { return map[string]cty.Type{"to": cty.Number} }
func (migrateStub) Plan(context.Context, *modules.Request) (*modules.Plan, error) {
	panic("not used by validate")
}
func (migrateStub) Apply(context.Context, *modules.Request) (*modules.Outcome, error) {
	panic("not used by validate")
}
func (migrateStub) Changes(cfg *modules.Config) (hosts, dbs []string) {
	if d := modules.RefName(modules.Get(cfg.Value, "database")); d != "" {
		dbs = append(dbs, d)
	}
	return nil, dbs
}

// panicky is a node kind whose Validator panics: validate must report it,
// not crash.
type panicky struct{ migrateStub }

func (panicky) Kind() string { return "panicky" }
func (panicky) Validate(*modules.Config) hcl.Diagnostics {
	var m map[string]int
	m["x"]++
	return nil
}

func testRegistry() *modules.Registry {
	r := modules.NewRegistry()
	r.RegisterNode(&backup.Backup{Version: "test"})
	r.RegisterNode(migrateStub{})
	r.RegisterNode(panicky{})
	r.RegisterAction(&backup.Restore{})
	r.RegisterAction(&upload.Upload{})
	r.RegisterAction(&run.Run{})
	r.RegisterProbe(&httpcheck.HTTP{})
	return r
}

func loadValidate(t *testing.T, dir string) (*lang.Config, hcl.Diagnostics) {
	t.Helper()
	reg := testRegistry()
	cfg, diags := lang.Load(dir, executor.Schemas(reg), lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		return cfg, diags
	}
	return cfg, append(diags, executor.Validate(cfg, reg)...)
}

func TestValidate_valid(t *testing.T) {
	for _, name := range langtest.Subdirs(t, "testdata/validate/valid") {
		t.Run(name, func(t *testing.T) {
			_, diags := loadValidate(t, filepath.Join("testdata/validate/valid", name))
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("unexpected: %s", langtest.DiagString(d))
				}
			}
		})
	}
}

func TestValidate_invalid(t *testing.T) {
	for _, name := range langtest.Subdirs(t, "testdata/validate/invalid") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/validate/invalid", name)
			_, diags := loadValidate(t, dir)
			langtest.CheckMarkers(t, dir, diags)
		})
	}
}

func TestValidate_waiverWarns(t *testing.T) {
	_, diags := loadValidate(t, "testdata/validate/valid/waiver")
	var warned bool
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && strings.Contains(d.Summary, "step.hotfix") && d.Subject != nil && d.Subject.Start.Line > 0 {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no waiver warning in %v", diags)
	}
}

func TestValidate_cycleNamesEveryNode(t *testing.T) {
	_, diags := loadValidate(t, "testdata/validate/invalid/cycle")
	var nodes []string
	for _, d := range diags {
		if d.Summary != "Dependency cycle" {
			continue
		}
		node := strings.Fields(d.Detail)[0]
		switch node {
		case "check.a", "step.b", "gate.c":
			nodes = append(nodes, node)
			if !strings.Contains(d.Detail, "check.a -> step.b -> gate.c -> check.a") {
				t.Errorf("detail does not name the cycle: %s", d.Detail)
			}
		}
	}
	if strings.Join(nodes, " ") != "check.a step.b gate.c" {
		t.Errorf("cycle diagnostics for %v, want each of check.a step.b gate.c once", nodes)
	}
}

func TestSchemas_fromRegistry(t *testing.T) {
	s := executor.Schemas(testRegistry())
	if s.Nodes["backup"] == nil || s.Actions["run"] == nil || s.Probes["http"] == nil || s.Outputs["backup"]["id"] != cty.String {
		t.Errorf("schemas = %+v", s)
	}
	if s := executor.Schemas(nil); s.Nodes == nil {
		t.Errorf("nil registry gives nil maps")
	}
}
