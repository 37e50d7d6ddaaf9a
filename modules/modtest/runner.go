package modtest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/modules"
)

// Runner drives module calls the way the executor does, for integration
// tests against real hosts: plan with readers only, apply with Record
// capturing the undo state, undo with that state.
type Runner struct {
	T    testing.TB
	Env  *Env
	Host string // the host actions run on
	Dir  string // configuration directory
	Ctx  *hcl.EvalContext
	Log  bytes.Buffer
}

// Decode decodes src (one block) with m's spec and fails the test on any
// decode or validation error.
func (r *Runner) Decode(m modules.Module, src string) *modules.Config {
	r.T.Helper()
	cfg, ds := DecodeBlock("test.hcl", []byte(src), m.Spec(), r.Ctx, r.Dir)
	if !ds.HasErrors() {
		if v, ok := m.(modules.Validator); ok {
			ds = append(ds, v.Validate(cfg)...)
		}
	}
	if ds.HasErrors() {
		r.T.Fatalf("decode %s: %s", m.Kind(), ds.Error())
	}
	return cfg
}

func (r *Runner) req(cfg *modules.Config) *modules.Request {
	return &modules.Request{Config: cfg, Node: "step.test", Host: r.Host, Env: r.Env, Log: &r.Log}
}

func (r *Runner) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// Plan runs m.Plan with Target disabled, as at plan time.
func (r *Runner) Plan(m modules.Action, cfg *modules.Config) *modules.Plan {
	r.T.Helper()
	ctx, cancel := r.ctx()
	defer cancel()
	r.Env.PlanOnly = true
	defer func() { r.Env.PlanOnly = false }()
	p, err := m.Plan(ctx, r.req(cfg))
	if err != nil {
		r.T.Fatalf("plan %s: %v", m.Kind(), err)
	}
	return p
}

// Apply runs m.Apply; it returns the outcome, the state given to Record (or
// Outcome.Undo) and the error.
func (r *Runner) Apply(m modules.Action, cfg *modules.Config) (*modules.Outcome, json.RawMessage, error) {
	r.T.Helper()
	ctx, cancel := r.ctx()
	defer cancel()
	var state json.RawMessage
	req := r.req(cfg)
	req.Record = func(s json.RawMessage) error { state = append(json.RawMessage(nil), s...); return nil }
	out, err := m.Apply(ctx, req)
	if state == nil && out != nil {
		state = out.Undo
	}
	return out, state, err
}

// MustApply is Apply failing the test on error.
func (r *Runner) MustApply(m modules.Action, cfg *modules.Config) (*modules.Outcome, json.RawMessage) {
	r.T.Helper()
	out, st, err := r.Apply(m, cfg)
	if err != nil {
		r.T.Fatalf("apply %s: %v\nlog:\n%s", m.Kind(), err, r.Log.String())
	}
	return out, st
}

// Undo runs m's Undo with state, failing the test on error.
func (r *Runner) Undo(m modules.Action, cfg *modules.Config, state json.RawMessage) {
	r.T.Helper()
	u, ok := m.(modules.Undoer)
	if !ok {
		r.T.Fatalf("%s has no Undo", m.Kind())
	}
	ctx, cancel := r.ctx()
	defer cancel()
	if err := u.Undo(ctx, r.req(cfg), state); err != nil {
		r.T.Fatalf("undo %s: %v\nlog:\n%s", m.Kind(), err, r.Log.String())
	}
}

// Snapshot lists every path under roots on a host with type, mode, owner,
// size, link target and sha256, sorted: two equal snapshots mean the same
// files with the same bytes and modes. exec runs a command as root on the
// host (testbed's Host.Exec). Paths matching an ignore substring are left out.
func Snapshot(t testing.TB, exec func(context.Context, string) (string, error), roots []string, ignore ...string) string {
	t.Helper()
	var b strings.Builder
	for _, root := range roots {
		cmd := "if [ -e " + modules.ShellQuote(root) + " ]; then find " + modules.ShellQuote(root) +
			` -printf '%p %y %m %u:%g %s %l\n' | sort; find ` + modules.ShellQuote(root) +
			` -type f -exec sha256sum {} + | sort -k2; else echo "` + root + ` absent"; fi`
		out, err := exec(context.Background(), cmd)
		if err != nil {
			t.Fatalf("snapshot %s: %v", root, err)
		}
	lines:
		for _, l := range strings.Split(out, "\n") {
			for _, ig := range ignore {
				if strings.Contains(l, ig) {
					continue lines
				}
			}
			// Directory sizes depend on tmpfs bookkeeping, not on content.
			if f := strings.Fields(l); len(f) >= 5 && f[1] == "d" {
				f[4] = "-"
				l = strings.Join(f, " ")
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
