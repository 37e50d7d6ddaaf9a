package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// Test modules: small, in-memory, for the ordering tests of this package
// only. The proof tests against real hosts use the real modules.

// trace records what the test modules did, in order.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (t *trace) add(format string, a ...any) {
	t.mu.Lock()
	t.lines = append(t.lines, fmt.Sprintf(format, a...))
	t.mu.Unlock()
}

func (t *trace) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// markAction appends `text` to /log on its host; undo restores the old content.
// fail = true makes it fail after recording its undo state.
type markAction struct {
	tr       *trace
	undoFail map[string]int // text -> how many undo attempts fail
	mu       sync.Mutex
}

func (*markAction) Kind() string { return "mark" }
func (*markAction) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"text":  &hcldec.AttrSpec{Name: "text", Type: cty.String, Required: true},
		"fail":  &hcldec.AttrSpec{Name: "fail", Type: cty.Bool},
		"block": &hcldec.AttrSpec{Name: "block", Type: cty.Bool},
		"safe":  &hcldec.AttrSpec{Name: "safe", Type: cty.Bool},
	}
}

// Safe: `safe = true` makes a mark repeatable on resume.
func (*markAction) Safe(cfg *modules.Config) bool { return modules.GetBool(cfg.Value, "safe", false) }

func (m *markAction) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	r, err := req.Env.Reader(req.Host)
	if err != nil {
		return nil, err
	}
	sum, _ := r.SHA256(ctx, "/log")
	return &modules.Plan{Change: modules.Update, Summary: "append " + modules.GetString(req.Config.Value, "text"),
		Facts: map[string]string{"sha256 /log": sum}}, nil
}

func (m *markAction) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return nil, err
	}
	text := modules.GetString(req.Config.Value, "text")
	old, err := t.ReadFile(ctx, "/log", 1<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	st, _ := json.Marshal(string(old))
	if err := req.Record(st); err != nil {
		return nil, err
	}
	if modules.GetBool(req.Config.Value, "block", false) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if modules.GetBool(req.Config.Value, "fail", false) {
		m.tr.add("fail %s@%s", text, req.Host)
		return nil, fmt.Errorf("%s failed on purpose", text)
	}
	if err := t.WriteFile(ctx, "/log", strings.NewReader(string(old)+text+"\n"), 0o644); err != nil {
		return nil, err
	}
	m.tr.add("do %s@%s", text, req.Host)
	return &modules.Outcome{Changed: true, Message: "appended " + text}, nil
}

func (m *markAction) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	text := modules.GetString(req.Config.Value, "text")
	m.mu.Lock()
	if m.undoFail[text] > 0 {
		m.undoFail[text]--
		m.mu.Unlock()
		m.tr.add("undo-fail %s@%s", text, req.Host)
		return fmt.Errorf("undo of %s failed on purpose", text)
	}
	m.mu.Unlock()
	var old string
	if err := json.Unmarshal(state, &old); err != nil {
		return err
	}
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return err
	}
	m.tr.add("undo %s@%s", text, req.Host)
	return t.WriteFile(ctx, "/log", strings.NewReader(old), 0o644)
}

// noteAction is a rollback-block action: it appends to the trace only.
type noteAction struct{ tr *trace }

func (*noteAction) Kind() string { return "note" }
func (*noteAction) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"text": &hcldec.AttrSpec{Name: "text", Type: cty.String, Required: true}}
}
func (*noteAction) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.Exec, Summary: "note"}, nil
}
func (a *noteAction) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	a.tr.add("note %s@%s", modules.GetString(req.Config.Value, "text"), req.Host)
	return &modules.Outcome{Changed: true}, nil
}

// tbackup "protects" the hosts it names; output id.
type tbackup struct{ tr *trace }

func (*tbackup) Kind() string { return "tbackup" }
func (*tbackup) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"host": &hcldec.AttrSpec{Name: "host", Type: cty.DynamicPseudoType, Required: true}}
}
func (*tbackup) Outputs() map[string]cty.Type { return map[string]cty.Type{"id": cty.String} }
func (*tbackup) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.Create, Summary: "backup"}, nil
}
func (b *tbackup) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	b.tr.add("backup %s", req.Node)
	return &modules.Outcome{Changed: true, Outputs: map[string]cty.Value{"id": cty.StringVal(req.Env.RunID() + "/" + req.Node)}}, nil
}
func (*tbackup) Protects(cfg *modules.Config) ([]string, []string) {
	return []string{modules.RefName(modules.Get(cfg.Value, "host"))}, nil
}

// noop is the benchmark's node: it does nothing.
type noop struct{}

func (*noop) Kind() string                 { return "noop" }
func (*noop) Spec() hcldec.Spec            { return &hcldec.ObjectSpec{} }
func (*noop) Outputs() map[string]cty.Type { return nil }
func (*noop) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.NoOp}, nil
}
func (*noop) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	return &modules.Outcome{}, nil
}

// okProbe passes unless `ok = false`; it counts its calls.
type okProbe struct {
	tr *trace
}

func (*okProbe) Kind() string { return "ok" }
func (*okProbe) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{"ok": &hcldec.AttrSpec{Name: "ok", Type: cty.Bool, Required: true}}
}
func (p *okProbe) Check(ctx context.Context, req *modules.Request) error {
	p.tr.add("check %s", req.Node)
	if !modules.GetBool(req.Config.Value, "ok", true) {
		return errors.New("not ok")
	}
	return nil
}

type testWorld struct {
	tr    *trace
	mark  *markAction
	reg   *modules.Registry
	hosts *fakeHosts
}

func newWorld() *testWorld {
	tr := &trace{}
	w := &testWorld{tr: tr, mark: &markAction{tr: tr, undoFail: map[string]int{}}, hosts: &fakeHosts{m: map[string]*modtest.FakeHost{}}}
	r := modules.NewRegistry()
	r.RegisterAction(w.mark)
	r.RegisterAction(&noteAction{tr: tr})
	r.RegisterNode(&tbackup{tr: tr})
	r.RegisterNode(&noop{})
	r.RegisterProbe(&okProbe{tr: tr})
	w.reg = r
	return w
}

func schemasOf(r *modules.Registry) lang.Schemas {
	s := lang.Schemas{Nodes: map[string]hcldec.Spec{}, Actions: map[string]hcldec.Spec{}, Probes: map[string]hcldec.Spec{}, Outputs: map[string]map[string]cty.Type{}}
	for _, k := range r.NodeKinds() {
		m, _ := r.Node(k)
		s.Nodes[k], s.Outputs[k] = m.Spec(), m.Outputs()
	}
	for _, k := range r.ActionKinds() {
		m, _ := r.Action(k)
		s.Actions[k] = m.Spec()
	}
	for _, k := range r.ProbeKinds() {
		m, _ := r.Probe(k)
		s.Probes[k] = m.Spec()
	}
	return s
}

// fakeHosts hands out in-memory hosts (unit tests only).
type fakeHosts struct {
	mu sync.Mutex
	m  map[string]*modtest.FakeHost
}

func (f *fakeHosts) Target(ctx context.Context, h *lang.Host) (modules.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.m[h.Name]
	if t == nil {
		t = modtest.NewFakeHost(h.Name)
		f.m[h.Name] = t
	}
	return t, nil
}
func (f *fakeHosts) Close() error { return nil }

func (f *fakeHosts) log(host string) string {
	f.mu.Lock()
	t := f.m[host]
	f.mu.Unlock()
	if t == nil {
		return ""
	}
	b, _ := t.ReadFile(context.Background(), "/log", 1<<20)
	return string(b)
}

// load writes src as main.hcl in a temp dir and loads it.
func (w *testWorld) load(t testing.TB, src string) *lang.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := lang.Load(dir, schemasOf(w.reg), lang.Options{Env: map[string]string{}, Apply: true})
	if ds.HasErrors() {
		t.Fatalf("load: %s", ds.Error())
	}
	return cfg
}

func (w *testWorld) opts(t testing.TB, cfg *lang.Config) Options {
	return Options{Config: cfg, Registry: w.reg, StateDir: filepath.Join(t.TempDir(), ".upgrader"), Hosts: w.hosts,
		UndoBackoff: 1, ApprovalPoll: 5e6, Log: io.Discard}
}
