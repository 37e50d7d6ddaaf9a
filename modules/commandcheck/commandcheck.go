// Package commandcheck is the `command` probe of a check: one command on a
// host, passing on an expected exit code and output. One attempt per call:
// retries, interval and timeout belong to the executor.
// It imports modules, lang/diags and modules/internal/exitcode (shared with run).
package commandcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/exitcode"
)

// Command is the command probe.
type Command struct{}

var (
	_ modules.Probe      = (*Command)(nil)
	_ modules.Validator  = (*Command)(nil)
	_ modules.Repeatable = (*Command)(nil)
	_ modules.Describer  = (*Command)(nil)
)

func (*Command) Kind() string { return "command" }

// Describe: the offline plan shows these arguments.
func (*Command) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"command", "host"}}
}

// Safe: a check's command is read-only by its author's promise.
func (*Command) Safe(*modules.Config) bool { return true }

func (*Command) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"host":          &hcldec.AttrSpec{Name: "host", Type: cty.DynamicPseudoType, Required: true},
		"command":       &hcldec.AttrSpec{Name: "command", Type: cty.String, Required: true},
		"sudo":          &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
		"expect_exit":   &hcldec.AttrSpec{Name: "expect_exit", Type: cty.List(cty.Number)},
		"expect_output": &hcldec.AttrSpec{Name: "expect_output", Type: cty.String},
	}
}

func (*Command) Validate(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if h := modules.Get(v, "host"); h.IsKnown() && (!h.Type().IsObjectType() || modules.RefName(h) == "") {
		ds = append(ds, diags.At(*cfg.Range("host"), "Invalid host", "host must name a host block, like host = host.standby."))
	}
	if c := modules.Get(v, "command"); c.IsKnown() && !c.IsNull() && strings.TrimSpace(c.AsString()) == "" {
		ds = append(ds, diags.At(*cfg.Range("command"), "Empty command", "The check needs a command to run."))
	}
	if codes, ok, err := exitcode.Parse(v, "expect_exit"); ok && (err != nil || len(codes) == 0) {
		msg := "expect_exit needs at least one exit code."
		if err != nil {
			msg = err.Error()
		}
		ds = append(ds, diags.At(*cfg.Range("expect_exit"), "Invalid expect_exit", msg))
	}
	return ds
}

// Check runs the command once (bounded by ctx) and compares exit and output.
func (*Command) Check(ctx context.Context, req *modules.Request) error {
	v := req.Config.Value
	host := modules.RefName(modules.Get(v, "host"))
	if host == "" {
		host = req.Host
	}
	cmdline := modules.GetString(v, "command")
	shown := modules.Shown(v, "command")
	codes, _, err := exitcode.Parse(v, "expect_exit")
	if err != nil {
		return err
	}
	want := modules.GetString(v, "expect_output")
	cmd := modules.Command{Cmd: cmdline, Sudo: modules.GetBool(v, "sudo", false)}
	var res modules.Result
	if t, terr := req.Env.Target(host); terr == nil {
		res, err = t.Run(ctx, cmd)
	} else if r, rerr := req.Env.Reader(host); rerr == nil {
		res, err = r.Probe(ctx, cmd) // a check's command is read-only by its author's promise
	} else {
		return rerr
	}
	if err != nil {
		return modules.OnHost(host, fmt.Errorf("%s: %w", shown, err))
	}
	out := exitcode.Output(res, req.Secrets)
	exitOK := false
	for _, c := range codes {
		exitOK = exitOK || c == res.ExitCode
	}
	if !exitOK {
		return modules.OnHost(host, fmt.Errorf("%s: expected exit %s, got %d; output: %s", shown, exitcode.Text(codes), res.ExitCode, trim(out)))
	}
	if want != "" && !strings.Contains(string(res.Stdout)+string(res.Stderr), want) {
		return modules.OnHost(host, fmt.Errorf("%s: expected output containing %q, got: %s", shown, modules.Shown(v, "expect_output"), trim(out)))
	}
	return nil
}

// trim keeps failure messages to a readable size.
func trim(s string) string {
	if s == "" {
		return "(nothing)"
	}
	if len(s) > 300 {
		s = s[:300] + " [...]"
	}
	return fmt.Sprintf("%q", s)
}
