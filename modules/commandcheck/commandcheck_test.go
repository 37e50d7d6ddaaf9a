package commandcheck

import (
	"context"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestCommand_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &Command{})
}

// Check's verdicts against canned results; real hosts are in the integration test.
func TestCommand_check(t *testing.T) {
	cases := []struct {
		name, body string
		exit       int
		stdout     string
		want       string // "" passes
	}{
		{"exit 0", ``, 0, "", ""},
		{"exit 1", ``, 1, "boom", `host "standby": app --version: expected exit [0], got 1; output: "boom"`},
		{"exit expected", `expect_exit = [1, 2]`, 2, "", ""},
		{"output found", `expect_output = var.version`, 0, "app 2.4.0\n", ""},
		{"output missing", `expect_output = var.version`, 0, "app 2.3.1\n", `expected output containing "2.4.0", got: "app 2.3.1"`},
		{"nothing printed", `expect_output = "x"`, 0, "", `got: (nothing)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "command {\n host = { name = \"standby\" }\n command = \"app --version\"\n " + c.body + "\n}\n"
			m := &Command{}
			cfg, ds := modtest.DecodeBlock("t.hcl", []byte(src), m.Spec(), modtest.EvalContext(), ".")
			if ds.HasErrors() {
				t.Fatal(ds)
			}
			h := modtest.NewFakeHost("standby")
			h.Probes["app --version"], h.Outputs["app --version"] = c.exit, c.stdout
			env := &modtest.Env{Targets: map[string]modules.Target{"standby": h}}
			err := m.Check(context.Background(), &modules.Request{Config: cfg, Node: "check.version", Index: -1, Env: env})
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// A command or expected output built from a sensitive value never shows in the failure.
func TestCommand_checkSensitive(t *testing.T) {
	src := "command {\n host = { name = \"standby\" }\n command = \"login ${var.secret}\"\n expect_output = \"ok ${var.secret}\"\n}\n"
	m := &Command{}
	cfg, ds := modtest.DecodeBlock("t.hcl", []byte(src), m.Spec(), modtest.EvalContext(), ".")
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	h := modtest.NewFakeHost("standby")
	h.Probes["login hunter2"], h.Outputs["login hunter2"] = 0, "denied"
	env := &modtest.Env{Targets: map[string]modules.Target{"standby": h}}
	err := m.Check(context.Background(), &modules.Request{Config: cfg, Env: env})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), `(sensitive): expected output containing "(sensitive)", got: "denied"`) {
		t.Fatalf("err = %v", err)
	}
}
