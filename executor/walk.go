package executor

import (
	"context"
	"sort"

	"github.com/upgrader-dev/upgrader/lang"
)

// topoOrder returns the nodes in executor/dag's stable topological order.
func topoOrder(cfg *lang.Config) ([]string, error) {
	return Graph(cfg).TopoOrder()
}

func sortedNodes(cfg *lang.Config) []string {
	o, err := topoOrder(cfg)
	if err != nil {
		for a := range cfg.Nodes {
			o = append(o, a)
		}
		sort.Strings(o)
	}
	return o
}

// walk calls visit for every node once all its dependencies returned nil,
// at most -parallelism at once; after a failure nothing new starts.
func (r *run) walk(ctx context.Context, visit func(context.Context, string) error) error {
	return Graph(r.cfg).Walk(ctx, r.opts.parallelism(), visit).Err()
}
