package executor

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/zclconf/go-cty/cty"
)

// Schemas tells lang the body of every kind in reg, so lang.Load can decode
// (and type-check) module blocks without knowing the modules.
func Schemas(reg *modules.Registry) lang.Schemas {
	s := lang.Schemas{
		Nodes:   map[string]hcldec.Spec{},
		Actions: map[string]hcldec.Spec{},
		Probes:  map[string]hcldec.Spec{},
		Outputs: map[string]map[string]cty.Type{},
	}
	if reg == nil {
		return s
	}
	for _, k := range reg.NodeKinds() {
		m, _ := reg.Node(k)
		s.Nodes[k] = m.Spec()
		s.Outputs[k] = m.Outputs()
	}
	for _, k := range reg.ActionKinds() {
		m, _ := reg.Action(k)
		s.Actions[k] = m.Spec()
	}
	for _, k := range reg.ProbeKinds() {
		m, _ := reg.Probe(k)
		s.Probes[k] = m.Spec()
	}
	return s
}
