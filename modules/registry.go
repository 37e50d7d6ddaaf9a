package modules

import (
	"fmt"
	"sort"
)

// Registry maps block types to modules. It is built explicitly by
// cmd/upgrader (no init-time magic) and panics on a duplicate kind.
type Registry struct {
	nodes   map[string]Node
	actions map[string]Action
	probes  map[string]Probe
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{nodes: map[string]Node{}, actions: map[string]Action{}, probes: map[string]Probe{}}
}

// RegisterNode adds a top-level node kind (backup, schema_check, migrate, observe).
func (r *Registry) RegisterNode(m Node) {
	if _, dup := r.nodes[m.Kind()]; dup {
		panic(fmt.Sprintf("modules: node kind %q registered twice", m.Kind()))
	}
	r.nodes[m.Kind()] = m
}

// RegisterAction adds a step action kind (upload, template, release, run, restore).
func (r *Registry) RegisterAction(m Action) {
	if _, dup := r.actions[m.Kind()]; dup {
		panic(fmt.Sprintf("modules: action kind %q registered twice", m.Kind()))
	}
	r.actions[m.Kind()] = m
}

// RegisterProbe adds a check probe kind (http, command, sql).
func (r *Registry) RegisterProbe(m Probe) {
	if _, dup := r.probes[m.Kind()]; dup {
		panic(fmt.Sprintf("modules: probe kind %q registered twice", m.Kind()))
	}
	r.probes[m.Kind()] = m
}

func (r *Registry) Node(kind string) (Node, bool)     { m, ok := r.nodes[kind]; return m, ok }
func (r *Registry) Action(kind string) (Action, bool) { m, ok := r.actions[kind]; return m, ok }
func (r *Registry) Probe(kind string) (Probe, bool)   { m, ok := r.probes[kind]; return m, ok }

// NodeKinds, ActionKinds and ProbeKinds list the registered kinds, sorted.
func (r *Registry) NodeKinds() []string   { return keys(r.nodes) }
func (r *Registry) ActionKinds() []string { return keys(r.actions) }
func (r *Registry) ProbeKinds() []string  { return keys(r.probes) }

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
