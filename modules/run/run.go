// Package run is the `run` step action: one shell command on a host, with
// creates/unless guards, expected exit codes and a capped output capture.
// It has no undo of its own: a step's rollback block undoes a command.
// It imports only modules and lang/diags.
package run

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/exitcode"
)

// Run is the run action.
type Run struct{}

var (
	_ modules.Action          = (*Run)(nil)
	_ modules.Validator       = (*Run)(nil)
	_ modules.Repeatable      = (*Run)(nil)
	_ modules.RepeatExplainer = (*Run)(nil)
	_ modules.Describer       = (*Run)(nil)
)

func (*Run) Kind() string { return "run" }

// Describe: the offline plan shows these arguments.
func (*Run) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"command", "creates", "unless"}}
}

func (*Run) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"command":     &hcldec.AttrSpec{Name: "command", Type: cty.String, Required: true},
		"sudo":        &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
		"tty":         &hcldec.AttrSpec{Name: "tty", Type: cty.Bool},
		"env":         &hcldec.AttrSpec{Name: "env", Type: cty.Map(cty.String)},
		"timeout":     &hcldec.AttrSpec{Name: "timeout", Type: cty.String},
		"creates":     &hcldec.AttrSpec{Name: "creates", Type: cty.String},
		"unless":      &hcldec.AttrSpec{Name: "unless", Type: cty.String},
		"expect_exit": &hcldec.AttrSpec{Name: "expect_exit", Type: cty.List(cty.Number)},
		"idempotent":  &hcldec.AttrSpec{Name: "idempotent", Type: cty.Bool},
	}
}

// Validate checks what can be judged without a host.
func (*Run) Validate(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if c := modules.Get(v, "command"); c.IsKnown() && !c.IsNull() && strings.TrimSpace(c.AsString()) == "" {
		ds = append(ds, diags.At(*cfg.Range("command"), "Empty command", "run needs a command to execute."))
	}
	if _, err := modules.GetDuration(v, "timeout", 0); err != nil {
		ds = append(ds, diags.At(*cfg.Range("timeout"), "Invalid timeout", err.Error()))
	} else if d, _ := modules.GetDuration(v, "timeout", 0); d < 0 {
		ds = append(ds, diags.At(*cfg.Range("timeout"), "Invalid timeout", "timeout must be positive."))
	}
	if c := modules.GetString(v, "creates"); c != "" && !path.IsAbs(c) {
		ds = append(ds, diags.At(*cfg.Range("creates"), "Relative creates path",
			fmt.Sprintf("creates = %q must be an absolute path on the host.", c)))
	}
	if codes, ok, err := exitcode.Parse(v, "expect_exit"); ok && err != nil {
		ds = append(ds, diags.At(*cfg.Range("expect_exit"), "Invalid expect_exit", err.Error()))
	} else if ok && len(codes) == 0 {
		ds = append(ds, diags.At(*cfg.Range("expect_exit"), "Invalid expect_exit", "expect_exit needs at least one exit code."))
	}
	return ds
}

// Safe: a command may be repeated on resume only when guarded or declared idempotent.
func (*Run) Safe(cfg *modules.Config) bool {
	v := cfg.Value
	return modules.GetString(v, "creates") != "" || modules.GetString(v, "unless") != "" || modules.GetBool(v, "idempotent", false)
}

// Unsafe says what Safe looks for.
func (*Run) Unsafe(*modules.Config) string {
	return "no creates, unless or idempotent = true"
}

type args struct {
	command, creates, unless string
	shown, unlessShown       string // for plans, logs and errors: "(sensitive)" when marked
	sudo, tty                bool
	env                      map[string]string
	timeout                  time.Duration
	expect                   []int
	known                    bool // command and guards known (not "known after")
}

func decode(cfg *modules.Config) (*args, error) {
	v := cfg.Value
	a := &args{
		command:     modules.GetString(v, "command"),
		creates:     modules.GetString(v, "creates"),
		unless:      modules.GetString(v, "unless"),
		shown:       modules.Shown(v, "command"),
		unlessShown: modules.Shown(v, "unless"),
		sudo:        modules.GetBool(v, "sudo", false),
		tty:         modules.GetBool(v, "tty", false),
		env:         modules.GetStringMap(v, "env"),
		known:       true,
	}
	for _, k := range []string{"command", "creates", "unless"} {
		if !modules.Get(v, k).IsWhollyKnown() {
			a.known = false
		}
	}
	var err error
	if a.timeout, err = modules.GetDuration(v, "timeout", 0); err != nil {
		return nil, err
	}
	if a.expect, _, err = exitcode.Parse(v, "expect_exit"); err != nil {
		return nil, err
	}
	return a, nil
}

// skipReason checks the creates/unless guards with read-only calls.
func skipReason(ctx context.Context, r modules.Reader, a *args) (string, error) {
	if a.creates != "" {
		fi, err := r.Stat(ctx, a.creates)
		if err != nil {
			return "", err
		}
		if fi.Exists {
			return a.creates + " exists", nil
		}
	}
	if a.unless != "" {
		res, err := r.Probe(ctx, modules.Command{Cmd: a.unless, Sudo: a.sudo, Env: a.env, Timeout: a.timeout})
		if err != nil {
			return "", err
		}
		if res.ExitCode == 0 {
			return fmt.Sprintf("unless %q exited 0", a.unlessShown), nil
		}
	}
	return "", nil
}

func (*Run) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	a, err := decode(req.Config)
	if err != nil {
		return nil, err
	}
	p := &modules.Plan{Change: modules.Exec, Summary: summary(req.Config, a), Undo: "none: a rollback block is needed to undo it"}
	if !a.known {
		return p, nil
	}
	r, err := req.Env.Reader(req.Host)
	if err != nil {
		return nil, err
	}
	why, err := skipReason(ctx, r, a)
	if err != nil {
		return nil, modules.OnHost(req.Host, err)
	}
	if why != "" {
		p.Change, p.Reason = modules.Skip, why
	}
	return p, nil
}

func summary(cfg *modules.Config, a *args) string {
	c := modules.Get(cfg.Value, "command")
	if !c.IsKnown() {
		return "run (command known after apply)"
	}
	s := a.shown
	if a.sudo {
		s = "sudo " + s
	}
	return firstLine(s, 120)
}

func (*Run) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	a, err := decode(req.Config)
	if err != nil {
		return nil, err
	}
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return nil, err
	}
	why, err := skipReason(ctx, t, a)
	if err != nil {
		return nil, modules.OnHost(req.Host, err)
	}
	if why != "" {
		return &modules.Outcome{Skipped: why, Message: "skipped: " + why}, nil
	}
	log := modules.SyncWriter(req.Log)
	so, se := modules.Lines(log), modules.Lines(log) // whole lines: no secret cut by the other stream
	res, err := t.Run(ctx, modules.Command{Cmd: a.command, Sudo: a.sudo, TTY: a.tty, Env: a.env, Timeout: a.timeout, Stdout: so, Stderr: se})
	so.Flush()
	se.Flush()
	if err != nil {
		return nil, modules.OnHost(req.Host, fmt.Errorf("%s: %w", firstLine(a.shown, 80), err))
	}
	out := exitcode.Output(res, req.Secrets)
	for _, c := range a.expect {
		if res.ExitCode == c {
			return &modules.Outcome{Changed: true, Message: fmt.Sprintf("exit %d%s", res.ExitCode, prefixed(out))}, nil
		}
	}
	return nil, modules.OnHost(req.Host, fmt.Errorf("%s: exit %d, expected %s%s", firstLine(a.shown, 80), res.ExitCode, exitcode.Text(a.expect), prefixed(out)))
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func firstLine(s string, max int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
