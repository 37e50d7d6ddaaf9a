package commandcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The command check on a real host: passes, sudo, wrong exit and wrong
// output report what was expected and what came back, naming the host.
func TestCommand_realHost(t *testing.T) {
	bed := testbed.New(t, "standby")
	tg, err := bed.Target("standby")
	if err != nil {
		t.Fatal(err)
	}
	env := &modtest.Env{Targets: map[string]modules.Target{"standby": tg}}
	cases := []struct{ body, want string }{
		{`command = "echo app 2.4.0"
  expect_output = var.version`, ""},
		{`command = "id -un"
  sudo = true
  expect_output = "root"`, ""},
		{`command = "echo app 2.3.1"
  expect_output = var.version`, `host "standby": echo app 2.3.1: expected output containing "2.4.0", got: "app 2.3.1"`},
		{`command = "echo not ready >&2; exit 4"`, `host "standby": echo not ready >&2; exit 4: expected exit [0], got 4; output: "not ready"`},
	}
	for _, c := range cases {
		src := "command {\n  host = { name = \"standby\" }\n  " + c.body + "\n}\n"
		m := &Command{}
		cfg, ds := modtest.DecodeBlock("t.hcl", []byte(src), m.Spec(), modtest.EvalContext(), ".")
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := m.Check(ctx, &modules.Request{Config: cfg, Node: "check.version", Index: -1, Env: env})
		cancel()
		if c.want == "" && err != nil {
			t.Errorf("%s: %v", c.body, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: err = %v, want %q", c.body, err, c.want)
		}
	}
}
