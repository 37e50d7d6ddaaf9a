package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/modules"
)

// stampAction is a kind the executor has never heard of, defined only here:
// it writes `text` to `path` and undoes that from the state it recorded.
// Everything the executor knows of it comes from the module contract
// (Describer, UndoDescriber, Repeatable, Undoer): adding it takes this type
// and one registry line, nothing in the executor.
type stampAction struct {
	tr *trace
	// hold, while set, makes the next Apply wait for its context's end
	// after recording its undo state (upgrader dies mid-action).
	mu   sync.Mutex
	hold bool
}

var (
	_ modules.Action        = (*stampAction)(nil)
	_ modules.Describer     = (*stampAction)(nil)
	_ modules.UndoDescriber = (*stampAction)(nil)
	_ modules.Repeatable    = (*stampAction)(nil)
	_ modules.Undoer        = (*stampAction)(nil)
)

func (*stampAction) Kind() string { return "stamp" }
func (*stampAction) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"path":   &hcldec.AttrSpec{Name: "path", Type: cty.String, Required: true},
		"text":   &hcldec.AttrSpec{Name: "text", Type: cty.String, Required: true},
		"repeat": &hcldec.AttrSpec{Name: "repeat", Type: cty.Bool},
	}
}

func (*stampAction) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"path", "text"}, Change: modules.Update}
}
func (*stampAction) UndoText() string { return "the old stamp comes back" }

// Safe unless `repeat = false`.
func (*stampAction) Safe(cfg *modules.Config) bool { return modules.GetBool(cfg.Value, "repeat", true) }

func (*stampAction) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	return &modules.Plan{Change: modules.Update, Summary: "stamp " + modules.GetString(req.Config.Value, "path")}, nil
}

func (s *stampAction) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return nil, err
	}
	path, text := modules.GetString(req.Config.Value, "path"), modules.GetString(req.Config.Value, "text")
	old, err := t.ReadFile(ctx, path, 1<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	st, _ := json.Marshal(string(old))
	if err := req.Record(st); err != nil {
		return nil, err
	}
	s.mu.Lock()
	hold := s.hold
	s.hold = false
	s.mu.Unlock()
	if hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := t.WriteFile(ctx, path, strings.NewReader(text), 0o644); err != nil {
		return nil, err
	}
	s.tr.add("stamp %s@%s", text, req.Host)
	return &modules.Outcome{Changed: true}, nil
}

func (s *stampAction) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	var old string
	if err := json.Unmarshal(state, &old); err != nil {
		return err
	}
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return err
	}
	s.tr.add("unstamp %s@%s", modules.GetString(req.Config.Value, "text"), req.Host)
	return t.WriteFile(ctx, "/stamp", strings.NewReader(old), 0o644)
}

const stampConfig = `
host "web" {
  address = "198.51.100.10"
}
variable "fail" {
  type    = bool
  default = false
}
variable "secret" {
  type      = string
  default   = "s3cr3t-v2"
  sensitive = true
}
step "release" {
  host            = host.web
  backup_required = false
  stamp {
    path = "/stamp"
    text = var.secret
  }
  mark {
    text = "after"
    fail = var.fail
  }
}
`

// TestNewKind_pluggedInWithoutTheExecutor: a kind defined only in this test
// plans offline as its module describes it, applies, is undone by its own
// Undo when a later action fails, and is repeated by resume because it says
// it is safe (and refused when it says it is not).
func TestNewKind_pluggedInWithoutTheExecutor(t *testing.T) {
	w := newWorld()
	stamp := &stampAction{tr: w.tr}
	w.reg.RegisterAction(stamp)

	// plan -offline
	opts := w.opts(t, w.load(t, stampConfig))
	opts.Hosts = nil
	p, err := MakePlan(context.Background(), opts)
	if err != nil || len(p.Errors) > 0 {
		t.Fatalf("offline plan: %v %v", err, p.Errors)
	}
	a := p.Nodes[0].Actions[0]
	if a.Kind != "stamp" || a.Change != string(modules.Update) || a.Summary != "stamp path = /stamp, text = (sensitive)" || a.Undo != "the old stamp comes back" {
		t.Errorf("offline plan of the new kind: %+v", a)
	}
	if !strings.Contains(p.Nodes[0].Undo, "#1 stamp: the old stamp comes back") {
		t.Errorf("step undo: %q", p.Nodes[0].Undo)
	}

	// apply, then a failure after it: its own undo restores the old stamp
	w.hosts.Target(context.Background(), opts.Config.Hosts["web"])
	w.hosts.m["web"].WriteFile(context.Background(), "/stamp", strings.NewReader("v1"), 0o644)
	opts = w.opts(t, w.load(t, strings.Replace(stampConfig, "default = false", "default = true", 1)))
	sum, err := Apply(context.Background(), opts)
	if err != nil || sum.Outcome != OutcomeRolledBack {
		t.Fatalf("apply: %v %+v", err, sum)
	}
	if got, want := w.tr.get(), []string{"stamp s3cr3t-v2@web", "fail after@web", "undo after@web", "unstamp s3cr3t-v2@web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trace %q, want %q", got, want)
	}
	if b, _ := w.hosts.m["web"].ReadFile(context.Background(), "/stamp", 100); string(b) != "v1" {
		t.Errorf("/stamp after rollback = %q, want v1", b)
	}

	// upgrader dies while the stamp is in flight: resume repeats it (Safe)
	w.tr.mu.Lock()
	w.tr.lines = nil
	w.tr.mu.Unlock()
	opts = w.opts(t, w.load(t, stampConfig))
	stamp.hold = true
	ctx, cancel := context.WithCancel(context.Background())
	opts.Observer = func(ev Event) {
		if ev.Type == journal.ActionStarted && ev.Action == "stamp" {
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		}
	}
	sum, err = Apply(ctx, opts)
	if err != nil || sum.Outcome != OutcomeInterrupted {
		t.Fatalf("interrupted apply: %v %+v", err, sum)
	}
	opts.Observer = nil
	sum, err = Resume(context.Background(), opts, sum.Run, ResumeOptions{})
	if err != nil || sum.Outcome != OutcomeDone {
		t.Fatalf("resume: %v %+v", err, sum)
	}
	if got, want := w.tr.get(), []string{"stamp s3cr3t-v2@web", "do after@web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after resume: trace %q, want %q", got, want)
	}

	// the same with `repeat = false`: resume leaves the choice to a human
	src := strings.Replace(stampConfig, `path = "/stamp"`, "path = \"/stamp\"\n    repeat = false", 1)
	opts = w.opts(t, w.load(t, src))
	stamp.hold = true
	ctx, cancel = context.WithCancel(context.Background())
	opts.Observer = func(ev Event) {
		if ev.Type == journal.ActionStarted && ev.Action == "stamp" {
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		}
	}
	sum, _ = Apply(ctx, opts)
	opts.Observer = nil
	_, err = Resume(context.Background(), opts, sum.Run, ResumeOptions{})
	var ue *UnsafeResumeError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "stamp action #1") {
		t.Fatalf("resume of an unrepeatable stamp: %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the secret leaked: %v", err)
	}
}

// TestNewKind_validateAsksTheModule: a module node's rollback block takes
// an action only when the module says it is Hostless.
func TestNewKind_validateAsksTheModule(t *testing.T) {
	w := newWorld()
	w.reg.RegisterAction(&stampAction{tr: w.tr})
	w.reg.RegisterAction(&hostlessStamp{stampAction{tr: w.tr}})
	cfg := w.load(t, `
host "web" {
  address = "198.51.100.10"
}
tbackup "b" {
  host = host.web
  rollback {
    stamp {
      path = "/x"
      text = "y"
    }
    hstamp {
      path = "/x"
      text = "y"
    }
  }
}
`)
	ds := Validate(cfg, w.reg)
	var errs []string
	for _, d := range ds {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d.Summary+" at "+d.Subject.String())
		}
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "Action without a host at ") || !strings.Contains(errs[0], "main.hcl:8") {
		t.Fatalf("diagnostics: %q", errs)
	}
}

type hostlessStamp struct{ stampAction }

func (*hostlessStamp) Kind() string   { return "hstamp" }
func (*hostlessStamp) Hostless() bool { return true }
