package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// Plan is what apply would do, node by node in a topological order.
type Plan struct {
	ConfigHash string            `json:"config_hash"`
	Dir        string            `json:"dir"`
	Offline    bool              `json:"offline"`
	Vars       map[string]string `json:"vars,omitempty"` // sensitive ones "(sensitive)"
	Phases     []string          `json:"phases"`         // phase order; nodes outside any phase have Phase ""
	Nodes      []*PlanNode       `json:"nodes"`
	Errors     []string          `json:"errors,omitempty"` // probes that failed (host down, ...)
	// Hosts: the effective connection of hosts that take settings from ssh_config.
	Hosts []PlanHost `json:"hosts,omitempty"`

	// Facts are what the probes saw, by "NODE HOST #INDEX" (saved plans).
	Facts map[string]map[string]string `json:"facts,omitempty"`
}

// PlanNode is one node of a plan.
type PlanNode struct {
	Addr  string `json:"node"`
	Kind  string `json:"kind"`
	Phase string `json:"phase,omitempty"`
	// BeforePhases: outside any phase and after no phase's node (listed first).
	BeforePhases bool     `json:"before_phases,omitempty"`
	DependsOn    []string `json:"depends_on,omitempty"`
	// When: "" (none), "skipped: when is false", or "decided at apply (known after X)".
	When    string   `json:"when,omitempty"`
	Skipped bool     `json:"skipped,omitempty"`
	Hosts   []string `json:"hosts,omitempty"`
	// HostsAfter: the hosts are known only after these nodes ran.
	HostsAfter []string `json:"hosts_after,omitempty"`
	BatchSize  int      `json:"batch_size,omitempty"`
	// Waiver: backup_required = false (printed in red), with where it was written.
	Waiver      bool          `json:"backup_waived,omitempty"`
	WaiverRange string        `json:"backup_waived_at,omitempty"`
	Message     string        `json:"message,omitempty"` // gate
	Actions     []*PlanAction `json:"actions,omitempty"` // step actions per host; probes of a check; a module node's own plan
	Rollback    []string      `json:"rollback,omitempty"`
	Undo        string        `json:"undo,omitempty"`
	Error       string        `json:"error,omitempty"`
}

// PlanAction is one action on one host (or a node's or probe's own plan).
type PlanAction struct {
	Kind     string            `json:"kind"`
	Host     string            `json:"host,omitempty"`
	Index    int               `json:"index"`
	Change   string            `json:"change"`
	Summary  string            `json:"summary"`
	Detail   string            `json:"detail,omitempty"`
	Data     json.RawMessage   `json:"data,omitempty"` // a module's structured plan (schema_check: differences)
	Reason   string            `json:"reason,omitempty"`
	Undo     string            `json:"undo,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	Error    string            `json:"error,omitempty"`
	Facts    map[string]string `json:"-"`
}

// staticUndo is what undoes an action when the step has no rollback block (SPEC 2).
var staticUndo = map[string]string{
	"upload":   "previous content restored",
	"template": "previous content restored",
	"release":  "current points back to the previous release, activate runs",
	"run":      "none: a rollback block is needed to undo it",
	"restore":  "none",
}

// MakePlan computes the plan. With opts.Hosts nil (offline) no host is
// contacted: actions are described from their arguments.
func MakePlan(ctx context.Context, opts Options) (*Plan, error) {
	cfg := opts.Config
	order, err := topoOrder(cfg)
	if err != nil {
		return nil, err
	}
	p := &Plan{ConfigHash: cfg.Hash, Dir: cfg.Dir, Offline: opts.Hosts == nil, Phases: cfg.PhaseOrder,
		Vars: map[string]string{}, Facts: map[string]map[string]string{}}
	for name, v := range cfg.Variables {
		if v.Sensitive {
			p.Vars[name] = "(sensitive)"
		} else {
			p.Vars[name] = FormatValue(v.Value)
		}
	}
	p.Hosts = planHosts(cfg)
	s := newSession(ctx, &opts, "")
	outs := map[string]map[string]cty.Value{}
	for _, addr := range order {
		n := cfg.Nodes[addr]
		pn := planNode(ctx, s, n, outs)
		for _, a := range pn.Actions {
			if a.Error != "" {
				p.Errors = append(p.Errors, fmt.Sprintf("%s: %s", addr, a.Error))
			}
			if len(a.Facts) > 0 {
				p.Facts[factKey(addr, a)] = a.Facts
			}
		}
		if pn.Error != "" {
			p.Errors = append(p.Errors, fmt.Sprintf("%s: %s", addr, pn.Error))
		}
		p.Nodes = append(p.Nodes, pn)
	}
	// Phase by phase: nodes keep their topological order within a phase.
	// Nodes outside any phase come first when they follow no phase's node
	// (they run before the phases), last otherwise.
	g := Graph(cfg)
	rank := map[string]int{"": len(cfg.PhaseOrder)}
	for i, ph := range cfg.PhaseOrder {
		rank[ph] = i
	}
	for _, pn := range p.Nodes {
		if pn.Phase != "" {
			continue
		}
		pn.BeforePhases = true
		for _, a := range g.Ancestors(pn.Addr) {
			if n := cfg.Nodes[a]; n != nil && n.Phase != "" {
				pn.BeforePhases = false
				break
			}
		}
	}
	key := func(pn *PlanNode) int {
		if pn.BeforePhases {
			return -1
		}
		return rank[pn.Phase]
	}
	sort.SliceStable(p.Nodes, func(i, j int) bool { return key(p.Nodes[i]) < key(p.Nodes[j]) })
	return p, nil
}

func factKey(addr string, a *PlanAction) string {
	k := addr
	if a.Host != "" {
		k += " " + a.Host
	}
	if a.Index >= 0 {
		k += fmt.Sprintf(" #%d", a.Index+1)
	}
	return k
}

func planNode(ctx context.Context, s *session, n *lang.Node, outs map[string]map[string]cty.Value) *PlanNode {
	cfg, reg := s.cfg, s.opts.Registry
	pn := &PlanNode{Addr: n.Addr, Kind: n.Kind, Phase: n.Phase, DependsOn: n.DependsOn}
	ectx := evalScope(cfg, lang.RunInfo{}, outs)
	run, known, after, ds := evalWhen(n, ectx)
	switch {
	case ds.HasErrors():
		pn.Error = ds.Error()
		return pn
	case !known:
		pn.When = "decided at apply (known after " + strings.Join(after, ", ") + ")"
	case !run:
		pn.When, pn.Skipped = "skipped: when is false", true
		return pn
	}
	switch n.Kind {
	case lang.KindStep:
		planStep(ctx, s, n, pn, ectx)
	case lang.KindCheck:
		for i, blk := range n.Check.Probes {
			mc, ds := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
			a := &PlanAction{Kind: blk.Kind, Index: i, Change: string(modules.Read), Summary: describe(blk.Kind, mc.Value)}
			if ds.HasErrors() {
				a.Error = ds.Error()
			}
			pn.Actions = append(pn.Actions, a)
		}
		pn.Undo = "nothing to undo (reads only)"
	case lang.KindGate:
		if n.Gate != nil {
			pn.Message = n.Gate.Message
		}
		pn.Undo = "nothing to undo (waits for approval)"
	default:
		mod, ok := reg.Node(n.Kind)
		if !ok {
			pn.Error = fmt.Sprintf("no module for node kind %q", n.Kind)
			return pn
		}
		mc, ds := decode(cfg, n.Body, n.Spec, n.DeclRange, ectx)
		a := &PlanAction{Kind: n.Kind, Index: -1, Change: string(modules.Exec), Summary: describe(n.Kind, mc.Value)}
		for _, blk := range n.Rollback {
			rc, _ := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
			pn.Rollback = append(pn.Rollback, describe(blk.Kind, rc.Value))
		}
		if _, ok := mod.(modules.Undoer); len(pn.Rollback) > 0 {
			pn.Undo = "the rollback block"
		} else if ok {
			pn.Undo = "its own undo"
		} else {
			pn.Undo = "nothing to undo"
		}
		if ds.HasErrors() {
			a.Error = ds.Error()
		} else if s.opts.Hosts != nil {
			lw := &strings.Builder{}
			mp, err := planSafely(func() (*modules.Plan, error) {
				return mod.Plan(ctx, &modules.Request{Config: mc, Node: n.Addr, Index: -1, Env: &env{s: s, node: n.Addr, planOnly: true}, Log: lw})
			})
			fillAction(a, mp, err, cfg)
			if mp != nil && len(mp.Outputs) > 0 {
				outs[n.Addr] = mp.Outputs
			}
		}
		pn.Actions = append(pn.Actions, a)
	}
	return pn
}

func planStep(ctx context.Context, s *session, n *lang.Node, pn *PlanNode, ectx *hcl.EvalContext) {
	cfg, reg := s.cfg, s.opts.Registry
	hosts, after, ds := stepHosts(n, ectx)
	if ds.HasErrors() {
		pn.Error = ds.Error()
		return
	}
	pn.Hosts, pn.HostsAfter, pn.BatchSize = hosts, after, n.Step.BatchSize
	if !n.Step.BackupRequired {
		pn.Waiver = true
		r := n.Step.WaiverRange
		pn.WaiverRange = fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
	}
	for _, blk := range n.Step.Rollback {
		mc, _ := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
		pn.Rollback = append(pn.Rollback, describe(blk.Kind, mc.Value))
	}
	if len(pn.Rollback) > 0 {
		pn.Undo = "the rollback block"
	} else {
		var parts []string
		for i, blk := range n.Step.Actions {
			parts = append(parts, fmt.Sprintf("#%d %s: %s", i+1, blk.Kind, undoText(reg, blk.Kind)))
		}
		pn.Undo = strings.Join(parts, "; ")
	}
	planHosts := hosts
	if len(planHosts) == 0 {
		planHosts = []string{""} // hosts known only at apply: describe the actions once
	}
	results := make([][]*PlanAction, len(planHosts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.opts.parallelism())
	for hi, h := range planHosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for i, blk := range n.Step.Actions {
				mc, ds := decode(cfg, blk.Body, blk.Spec, blk.DeclRange, ectx)
				a := &PlanAction{Kind: blk.Kind, Host: h, Index: i, Change: string(modules.Exec), Summary: describe(blk.Kind, mc.Value)}
				if len(n.Step.Rollback) == 0 {
					a.Undo = undoText(reg, blk.Kind)
				}
				mod, ok := reg.Action(blk.Kind)
				switch {
				case ds.HasErrors():
					a.Error = ds.Error()
				case !ok:
					a.Error = fmt.Sprintf("no module for action %q", blk.Kind)
				case s.opts.Hosts != nil && h != "":
					mp, err := planSafely(func() (*modules.Plan, error) {
						return mod.Plan(ctx, &modules.Request{Config: mc, Node: n.Addr, Host: h, Index: i,
							Env: &env{s: s, node: n.Addr, host: h, planOnly: true}, Log: &strings.Builder{}})
					})
					fillAction(a, mp, err, cfg)
				}
				results[hi] = append(results[hi], a)
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		pn.Actions = append(pn.Actions, r...)
	}
}

// planSafely turns a module's panic at plan time into an error on its action.
func planSafely(f func() (*modules.Plan, error)) (mp *modules.Plan, err error) {
	defer func() {
		if p := recover(); p != nil {
			mp, err = nil, fmt.Errorf("internal error (panic): %v", p)
		}
	}()
	return f()
}

func undoText(reg *modules.Registry, kind string) string {
	if t, ok := staticUndo[kind]; ok {
		return t
	}
	if m, ok := reg.Action(kind); ok {
		if _, ok := m.(modules.Undoer); ok {
			return "its own undo"
		}
	}
	return "none: a rollback block is needed to undo it"
}

func fillAction(a *PlanAction, mp *modules.Plan, err error, cfg *lang.Config) {
	if err != nil {
		a.Error = redactWith(cfg, diagText(err))
		return
	}
	if mp == nil {
		return
	}
	a.Change = string(mp.Change)
	if mp.Summary != "" {
		a.Summary = redactWith(cfg, mp.Summary)
	}
	a.Detail, a.Reason = redactWith(cfg, mp.Detail), redactWith(cfg, mp.Reason)
	if d := redactWith(cfg, string(mp.Data)); json.Valid([]byte(d)) {
		a.Data = json.RawMessage(d)
	}
	if mp.Undo != "" {
		a.Undo = mp.Undo
	}
	for _, w := range mp.Warnings {
		a.Warnings = append(a.Warnings, redactWith(cfg, w))
	}
	if len(mp.Facts) > 0 {
		// facts go into saved plan files: never a sensitive value
		a.Facts = make(map[string]string, len(mp.Facts))
		for k, v := range mp.Facts {
			a.Facts[redactWith(cfg, k)] = redactWith(cfg, v)
		}
	}
}

// SavedPlan is the file `plan -out FILE` writes.
type SavedPlan struct {
	Format     string    `json:"format"`
	Created    time.Time `json:"created"`
	ConfigHash string    `json:"config_hash"`
	Dir        string    `json:"dir"`
	// VarArgs and VarFiles reload the configuration as planned; sensitive
	// variables are not in them and are asked again (or taken from -var / the environment).
	VarArgs   []string                     `json:"var_args,omitempty"`
	VarFiles  []string                     `json:"var_files,omitempty"`
	Vars      map[string]string            `json:"vars,omitempty"`
	Sensitive []string                     `json:"sensitive_vars,omitempty"`
	Facts     map[string]map[string]string `json:"facts"`
	Plan      *Plan                        `json:"plan"`
}

// SavedPlanFormat identifies saved plan files.
const SavedPlanFormat = "upgrader-plan/1"

// Save writes the plan to path (atomically).
func (p *Plan) Save(path string, opts Options) error {
	sp := SavedPlan{Format: SavedPlanFormat, Created: time.Now().UTC().Truncate(time.Second), ConfigHash: p.ConfigHash, Dir: p.Dir,
		VarArgs: publicVarArgs(opts.Config, opts.Vars), VarFiles: opts.VarFiles, Vars: publicVars(opts.Config), Facts: p.Facts, Plan: p}
	for name, v := range opts.Config.Variables {
		if v.Sensitive {
			sp.Sensitive = append(sp.Sensitive, name)
		}
	}
	sort.Strings(sp.Sensitive)
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// LoadSavedPlan reads a saved plan; ok is false when path is not one.
func LoadSavedPlan(path string) (*SavedPlan, bool, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return nil, false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var sp SavedPlan
	if json.Unmarshal(b, &sp) != nil || sp.Format != SavedPlanFormat {
		return nil, false, fmt.Errorf("%s is neither a configuration directory nor a saved plan (upgrader plan -out FILE)", path)
	}
	return &sp, true, nil
}

// Stale compares a saved plan with a fresh one; it returns every difference
// (config hash, then each probed fact), none when the saved plan still holds.
func (sp *SavedPlan) Stale(now *Plan) []string {
	var diffs []string
	if sp.ConfigHash != now.ConfigHash {
		diffs = append(diffs, fmt.Sprintf("configuration changed (hash %.12s when planned, %.12s now)", sp.ConfigHash, now.ConfigHash))
	}
	keys := map[string]bool{}
	for k := range sp.Facts {
		keys[k] = true
	}
	for k := range now.Facts {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		was, is := sp.Facts[k], now.Facts[k]
		fk := map[string]bool{}
		for f := range was {
			fk[f] = true
		}
		for f := range is {
			fk[f] = true
		}
		var fs []string
		for f := range fk {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		for _, f := range fs {
			a, aok := was[f]
			b, bok := is[f]
			switch {
			case aok && !bok:
				diffs = append(diffs, fmt.Sprintf("%s: %s was %q, no longer probed", k, f, a))
			case !aok && bok:
				diffs = append(diffs, fmt.Sprintf("%s: %s is %q, not probed when planned", k, f, b))
			case a != b:
				diffs = append(diffs, fmt.Sprintf("%s: %s was %q when planned, now %q", k, f, a, b))
			}
		}
	}
	return diffs
}
