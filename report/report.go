// Package report renders one run as a self-contained HTML page (inline CSS
// and SVG, no script, nothing fetched): the header, a timeline of every
// node per phase and host, one chart per metric and host of each
// observation window, the applied plan, the backups and the schema checks.
//
// It reads only what a run leaves in the state directory (the journal,
// metrics.jsonl, plan.json, backup manifests), so it works on a running
// run (a snapshot) and long after it ended. It imports executor and
// modules but nothing imports it except cmd.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// FileName is the report's name inside a run directory.
const FileName = "report.html"

// PlanFileName is where apply keeps the plan it applied, inside the run directory.
const PlanFileName = "plan.json"

// Input says which run to report on.
type Input struct {
	StateDir, Run string
	// Config is the run's configuration when it could be loaded (optional):
	// it names the sensitive variables and the nodes that never started.
	Config *lang.Config
	Now    time.Time // the snapshot's time; zero: time.Now()
}

// Report is everything the page shows, gathered before rendering.
type Report struct {
	Run        string
	By         string // user@machine that started it
	ConfigHash string
	Version    string
	Dir        string
	Vars       []Var
	Status     *executor.Status
	Generated  time.Time
	Start, End time.Time // the timeline's span

	Rows      []*Row
	Marks     []Mark   // rollback started, escalation, resumed
	UndoOrder []string // nodes in the order they were undone
	Gates     []Gate
	Windows   []*Window
	Plan      *executor.Plan
	Backups   []backup.Entry
	Schemas   []Schema
}

// Var is one variable as the header shows it.
type Var struct {
	Name, Value string
	Sensitive   bool
}

// Row is one line of the timeline: a node, or a node on one of its hosts.
type Row struct {
	Phase, Node, Kind, Host string
	State                   string // the node's state (executor.State*)
	Run                     *Bar   // when it ran; nil when it never started
	Undo                    *Bar   // its undo, when it was undone
	Note                    string // a gate's decision, a skip reason, an error
}

// Bar is a span of the timeline. Open: still going at the snapshot.
type Bar struct {
	Start, End time.Time
	State      string
	Open       bool
}

// Mark is an instant on the timeline.
type Mark struct {
	TS    time.Time
	Kind  string // rollback, escalation, resumed, approved
	Label string
}

// Gate is a gate and who decided it.
type Gate struct {
	Node     string
	Waiting  time.Time
	Decided  time.Time
	By       string
	Decision string // approved, rejected; "" while waiting
	Reason   string // why it was rejected
}

// Schema is a schema_check's result.
type Schema struct {
	Node    string
	Matches *bool
	Diff    string
}

// Build gathers the report of one run.
func Build(in Input) (*Report, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	evs, _, err := journal.Read(journal.Path(in.StateDir, in.Run))
	if err != nil {
		return nil, err
	}
	st, err := executor.RunStatus(in.StateDir, in.Run, in.Config)
	if err != nil {
		return nil, err
	}
	r := &Report{Run: in.Run, Status: st, Generated: now.UTC(), Dir: st.Dir}
	r.timeline(evs, st, in.Config, now)
	if err := r.windows(observe.MetricsFile(in.StateDir, in.Run), now); err != nil {
		return nil, err
	}
	r.Plan = readPlan(filepath.Join(journal.RunDir(in.StateDir, in.Run), PlanFileName))
	if all, err := backup.List(in.StateDir); err == nil {
		for _, e := range all {
			if e.Run == in.Run {
				r.Backups = append(r.Backups, e)
			}
		}
	}
	r.vars(evs, in.Config)
	return r, nil
}

// runData is the part of journal event data the report reads.
type runData struct {
	ConfigHash string                     `json:"config_hash"`
	Vars       map[string]string          `json:"vars"`
	Version    string                     `json:"version"`
	By         string                     `json:"by"`
	Via        string                     `json:"via"`
	Checks     []string                   `json:"checks"`
	Failing    []string                   `json:"failing"`
	Rollback   string                     `json:"rollback"`
	Outputs    map[string]json.RawMessage `json:"outputs"`
	Hosts      []string                   `json:"hosts"`
	Kind       string                     `json:"kind"`
	Phase      string                     `json:"phase"`
	Error      string                     `json:"error"`
	Message    string                     `json:"message"`
}

func (r *Report) vars(evs []journal.Event, cfg *lang.Config) {
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Type != journal.RunStarted {
			continue
		}
		var d runData
		_ = json.Unmarshal(ev.Data, &d)
		r.ConfigHash, r.Version, r.By = d.ConfigHash, d.Version, d.By
		for k, v := range d.Vars {
			r.Vars = append(r.Vars, Var{Name: k, Value: v})
			seen[k] = true
		}
	}
	if cfg != nil {
		// The journal holds no sensitive value; the configuration names them.
		for name, v := range cfg.Variables {
			if !seen[name] && (v.Sensitive || lang.IsSensitive(v.Value)) {
				r.Vars = append(r.Vars, Var{Name: name, Value: "(sensitive)", Sensitive: true})
			}
		}
	}
	sort.Slice(r.Vars, func(i, j int) bool { return r.Vars[i].Name < r.Vars[j].Name })
}

// timeline turns the journal into rows, marks and gates.
func (r *Report) timeline(evs []journal.Event, st *executor.Status, cfg *lang.Config, now time.Time) {
	type nodeRows struct {
		node   *Row
		byHost map[string]*Row
		hosts  []string
	}
	nodes := map[string]*nodeRows{}
	var order []string
	get := func(addr string) *nodeRows {
		n := nodes[addr]
		if n == nil {
			kind, _, _ := strings.Cut(addr, ".")
			n = &nodeRows{node: &Row{Node: addr, Kind: kind}, byHost: map[string]*Row{}}
			nodes[addr] = n
			order = append(order, addr)
		}
		return n
	}
	gates := map[string]*Gate{}
	undoSeen := map[string]bool{}
	for _, ev := range evs {
		var d runData
		if len(ev.Data) > 0 && ev.Type != journal.Checkpoint && ev.Type != journal.UndoState {
			_ = json.Unmarshal(ev.Data, &d)
		}
		if r.Start.IsZero() || ev.TS.Before(r.Start) {
			r.Start = ev.TS
		}
		if ev.TS.After(r.End) {
			r.End = ev.TS
		}
		switch ev.Type {
		case journal.NodeStarted:
			n := get(ev.Node)
			n.node.Kind, n.node.Phase, n.hosts = d.Kind, d.Phase, d.Hosts
			if n.node.Run == nil {
				n.node.Run = &Bar{Start: ev.TS, Open: true}
			} else { // resumed or retried: the bar goes on
				n.node.Run.Open = true
			}
			if ev.Node != "" && strings.HasPrefix(ev.Node, "gate.") {
				if gates[ev.Node] == nil {
					gates[ev.Node] = &Gate{Node: ev.Node, Waiting: ev.TS}
				}
			}
		case journal.ActionStarted:
			n := get(ev.Node)
			h := n.byHost[ev.Host]
			if h == nil {
				h = &Row{Node: ev.Node, Kind: n.node.Kind, Phase: n.node.Phase, Host: ev.Host, Run: &Bar{Start: ev.TS, Open: true}}
				n.byHost[ev.Host] = h
			}
			h.Run.Open = true
		case journal.ActionFinished:
			if h := get(ev.Node).byHost[ev.Host]; h != nil {
				h.Run.End, h.Run.Open = ev.TS, false
			}
		case journal.NodeFinished, journal.NodeFailed:
			n := get(ev.Node)
			if n.node.Run == nil {
				n.node.Run = &Bar{Start: ev.TS}
			}
			n.node.Run.End, n.node.Run.Open = ev.TS, false
			for _, h := range n.byHost {
				if h.Run.Open {
					h.Run.End, h.Run.Open = ev.TS, false
				}
			}
			if ev.Type == journal.NodeFailed {
				n.node.Note = d.Error
			}
		case journal.NodeSkipped:
			n := get(ev.Node)
			n.node.Kind, n.node.Phase = d.Kind, d.Phase
			n.node.Run = &Bar{Start: ev.TS, End: ev.TS}
		case journal.UndoStarted:
			if ev.Host != "" || ev.Index != nil {
				break
			}
			n := get(ev.Node)
			if n.node.Undo == nil {
				n.node.Undo = &Bar{Start: ev.TS, Open: true}
			}
			n.node.Undo.Open = true
			if !undoSeen[ev.Node] {
				undoSeen[ev.Node] = true
				r.UndoOrder = append(r.UndoOrder, ev.Node)
			}
			if !r.hasMark("rollback") {
				r.Marks = append(r.Marks, Mark{TS: ev.TS, Kind: "rollback", Label: "rollback started"})
			}
		case journal.UndoFinished, journal.UndoFailed:
			if ev.Host != "" || ev.Index != nil {
				break
			}
			n := get(ev.Node)
			if n.node.Undo == nil {
				n.node.Undo = &Bar{Start: ev.TS}
			}
			n.node.Undo.End, n.node.Undo.Open = ev.TS, false
			n.node.Undo.State = executor.StateUndone
			if ev.Type == journal.UndoFailed {
				n.node.Undo.State = executor.StateUndoFailed
			}
		case journal.Approved:
			g := gates[ev.Node]
			if g == nil {
				g = &Gate{Node: ev.Node}
				gates[ev.Node] = g
			}
			g.Decided, g.By, g.Decision = ev.TS, d.By, "approved"
			r.Marks = append(r.Marks, Mark{TS: ev.TS, Kind: "approved", Label: fmt.Sprintf("%s approved by %s", ev.Node, d.By)})
		case journal.Rejected:
			g := gates[ev.Node]
			if g == nil {
				g = &Gate{Node: ev.Node}
				gates[ev.Node] = g
			}
			g.Decided, g.By, g.Decision, g.Reason = ev.TS, d.By, "rejected", d.Message
			r.Marks = append(r.Marks, Mark{TS: ev.TS, Kind: "approved", Label: fmt.Sprintf("%s rejected by %s", ev.Node, d.By)})
		case journal.Escalation:
			label := fmt.Sprintf("escalation: checks %s", strings.Join(d.Checks, ", "))
			if len(d.Failing) > 0 {
				label += "; failing " + strings.Join(d.Failing, ", ")
			}
			if d.Rollback != "" {
				label += "; rollback " + d.Rollback
			}
			r.Marks = append(r.Marks, Mark{TS: ev.TS, Kind: "escalation", Label: label})
		case journal.RunResumed:
			label := "resumed"
			if d.Via == "rollback" {
				label = "upgrader rollback"
			}
			r.Marks = append(r.Marks, Mark{TS: ev.TS, Kind: "resumed", Label: label})
		case journal.NodeOutput:
			if strings.HasPrefix(ev.Node, "schema_check.") {
				r.addSchema(ev.Node, d.Outputs)
			}
		}
	}
	if st.Holder != nil || st.State == "running" {
		r.End = now.UTC() // a snapshot: open bars reach now
	}
	if !st.Finished.IsZero() && st.Finished.After(r.End) {
		r.End = st.Finished
	}

	states := map[string]executor.NodeSummary{}
	for _, ns := range st.Nodes {
		states[ns.Node] = ns
	}
	// Nodes of the configuration that never started, so the page shows the whole plan.
	for _, ns := range st.Nodes {
		if nodes[ns.Node] == nil {
			n := get(ns.Node)
			n.node.Kind, n.node.Phase = ns.Kind, ns.Phase
		}
	}
	for _, addr := range order {
		n := nodes[addr]
		ns, ok := states[addr]
		state := executor.StatePending
		if ok {
			state = ns.State
			if n.node.Phase == "" {
				n.node.Phase = ns.Phase
			}
			if ns.Reason != "" && n.node.Note == "" {
				n.node.Note = ns.Reason
			}
		}
		closeBar := func(b *Bar, s string) {
			if b == nil {
				return
			}
			if b.State == "" {
				b.State = s
			}
			if b.Open {
				b.End = r.End
			}
		}
		runState := state
		if state == executor.StateUndone || state == executor.StateUndoFailed {
			runState = executor.StateDone // it ran; the undo bar says the rest
			if n.node.Note != "" {
				runState = executor.StateFailed
			}
		}
		n.node.State = state
		closeBar(n.node.Run, runState)
		closeBar(n.node.Undo, executor.StateUndone)
		if n.node.Run != nil && n.node.Run.Open && st.State != "running" {
			n.node.Run.Open = false // interrupted: the bar ends where the journal does
		}
		if len(n.byHost) > 1 {
			hosts := make([]string, 0, len(n.byHost))
			for h := range n.byHost {
				hosts = append(hosts, h)
			}
			sort.Strings(hosts)
			for _, h := range hosts {
				hr := n.byHost[h]
				hr.Phase, hr.Kind, hr.State = n.node.Phase, n.node.Kind, state
				closeBar(hr.Run, runState)
				if n.node.Undo != nil {
					u := *n.node.Undo
					hr.Undo = &u
				}
				hr.Note = n.node.Note
				r.Rows = append(r.Rows, hr)
			}
			continue
		}
		if len(n.hosts) > 0 {
			n.node.Host = strings.Join(n.hosts, ", ")
		}
		if g := gates[addr]; g != nil && g.Decision != "" {
			n.node.Note = fmt.Sprintf("%s by %s at %s", g.Decision, g.By, g.Decided.UTC().Format(time.RFC3339))
		}
		r.Rows = append(r.Rows, n.node)
	}
	r.sortRows(cfg)
	for _, g := range gates {
		r.Gates = append(r.Gates, *g)
	}
	sort.Slice(r.Gates, func(i, j int) bool { return r.Gates[i].Waiting.Before(r.Gates[j].Waiting) })
	sort.SliceStable(r.Marks, func(i, j int) bool { return r.Marks[i].TS.Before(r.Marks[j].TS) })
	if r.Start.IsZero() {
		r.Start = st.Started
	}
	if !r.End.After(r.Start) {
		r.End = r.Start.Add(time.Second)
	}
}

func (r *Report) hasMark(kind string) bool {
	for _, m := range r.Marks {
		if m.Kind == kind {
			return true
		}
	}
	return false
}

// sortRows orders rows phase by phase (the configuration's phase order, else
// first start), then by start time; rows that never started go last in their phase.
func (r *Report) sortRows(cfg *lang.Config) {
	rank := map[string]int{}
	if cfg != nil {
		for i, p := range cfg.PhaseOrder {
			rank[p] = i + 1
		}
	}
	first := map[string]time.Time{}
	for _, row := range r.Rows {
		if row.Run != nil {
			if t, ok := first[row.Phase]; !ok || row.Run.Start.Before(t) {
				first[row.Phase] = row.Run.Start
			}
		}
	}
	far := time.Unix(1<<40, 0)
	start := func(row *Row) time.Time {
		if row.Run == nil {
			return far
		}
		return row.Run.Start
	}
	phaseStart := func(p string) time.Time {
		if t, ok := first[p]; ok {
			return t
		}
		return far
	}
	sort.SliceStable(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		if a.Phase != b.Phase {
			ra, rb := rank[a.Phase], rank[b.Phase]
			if ra != rb && ra > 0 && rb > 0 {
				return ra < rb
			}
			if pa, pb := phaseStart(a.Phase), phaseStart(b.Phase); !pa.Equal(pb) {
				return pa.Before(pb)
			}
			return a.Phase < b.Phase
		}
		if sa, sb := start(a), start(b); !sa.Equal(sb) {
			return sa.Before(sb)
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Host < b.Host
	})
}

func (r *Report) addSchema(node string, outs map[string]json.RawMessage) {
	s := Schema{Node: node}
	if raw, ok := outs["matches"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			s.Matches = &b
		}
	}
	if raw, ok := outs["diff"]; ok {
		_ = json.Unmarshal(raw, &s.Diff)
	}
	for i := range r.Schemas {
		if r.Schemas[i].Node == node {
			r.Schemas[i] = s
			return
		}
	}
	r.Schemas = append(r.Schemas, s)
}

func readPlan(path string) *executor.Plan {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var p executor.Plan
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &p
}

// WritePlan keeps the plan apply is about to carry out beside the run's
// journal, for the report. It holds no sensitive value (the plan's views
// already print "(sensitive)").
func WritePlan(stateDir, run string, p *executor.Plan) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(journal.RunDir(stateDir, run), PlanFileName), b)
}

// writeAtomic writes a file under a random temporary name beside it, fsyncs
// it and renames it into place, so that a reader never sees half a file.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return errors.Join(fmt.Errorf("writing %s", path), err)
	}
	return nil
}
