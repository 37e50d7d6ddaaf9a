package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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
	// SensitiveDigests are keyed digests of the sensitive values planned
	// with (not offline): a saved plan is stale when one differs.
	SensitiveDigests map[string]string `json:"sensitive_digests,omitempty"`
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
	if !p.Offline {
		if p.SensitiveDigests, err = SensitiveDigests(cfg, opts.StateDir); err != nil {
			return nil, err
		}
	}
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
	cfg := s.cfg
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
	nodeFor(s.opts.Registry, n).plan(ctx, s, pn, ectx, outs)
	// a Describer's summary is the module's text: never a sensitive value
	for _, a := range pn.Actions {
		a.Summary = redactWith(cfg, a.Summary)
	}
	for i := range pn.Rollback {
		pn.Rollback[i] = redactWith(cfg, pn.Rollback[i])
	}
	return pn
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

// undoText is what undoes an action when its step has no rollback block
// (SPEC 2): the module's own words (UndoDescriber), or the default.
func undoText(reg *modules.Registry, kind string) string {
	m, _ := reg.Action(kind)
	if u, ok := m.(modules.UndoDescriber); ok {
		return u.UndoText()
	}
	if _, ok := m.(modules.Undoer); ok {
		return "its own undo"
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
	if fi.Size() > maxSavedPlan {
		return nil, false, fmt.Errorf("%s is not a saved plan: %d bytes, more than any plan holds", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var sp SavedPlan
	if json.Unmarshal(b, &sp) != nil || sp.Format != SavedPlanFormat {
		return nil, false, fmt.Errorf("%s is neither a configuration directory nor a saved plan (upgrader plan -out FILE)", path)
	}
	// A plan file is outside input (edited, truncated, crafted): what apply
	// relies on must be there and well formed.
	damaged := func(why string) (*SavedPlan, bool, error) {
		return nil, false, fmt.Errorf("%s is a damaged saved plan (%s); make a new one with upgrader plan -out FILE", path, why)
	}
	switch {
	case sp.Plan == nil:
		return damaged("no plan in it")
	case !filepath.IsAbs(sp.Dir):
		return damaged(fmt.Sprintf("dir %q is not an absolute path", sp.Dir))
	}
	for _, a := range sp.VarArgs {
		if name, _, ok := strings.Cut(a, "="); !ok || strings.TrimSpace(name) == "" {
			return damaged(fmt.Sprintf("var_args entry %q is not NAME=VALUE", a))
		}
	}
	return &sp, true, nil
}

// digestDiffs says which sensitive variables differ between two sets of
// digests, by name only.
func digestDiffs(was, now map[string]string) []string {
	names := map[string]bool{}
	for n := range was {
		names[n] = true
	}
	for n := range now {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var diffs []string
	for _, n := range sorted {
		a, aok := was[n]
		b, bok := now[n]
		switch {
		case aok && !bok:
			diffs = append(diffs, fmt.Sprintf("sensitive variable %s was set when planned and is not now", n))
		case !aok && bok:
			diffs = append(diffs, fmt.Sprintf("sensitive variable %s is set now and was not when planned", n))
		case a != b:
			diffs = append(diffs, fmt.Sprintf("sensitive variable %s has another value than when planned", n))
		}
	}
	return diffs
}

// maxSavedPlan bounds what LoadSavedPlan reads.
const maxSavedPlan = 256 << 20

// Stale compares a saved plan with a fresh one; it returns every difference
// (config hash, then each probed fact), none when the saved plan still holds.
func (sp *SavedPlan) Stale(now *Plan) []string {
	var diffs []string
	if sp.ConfigHash != now.ConfigHash {
		diffs = append(diffs, fmt.Sprintf("configuration changed (hash %.12s when planned, %.12s now)", sp.ConfigHash, now.ConfigHash))
	}
	var was map[string]string
	if sp.Plan != nil {
		was = sp.Plan.SensitiveDigests
	}
	diffs = append(diffs, digestDiffs(was, now.SensitiveDigests)...)
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
