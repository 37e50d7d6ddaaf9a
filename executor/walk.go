package executor

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/upgrader-dev/upgrader/lang"
)

// TODO(dag): replace walkNodes and topoOrder by executor/dag's Walk and
// topological order once that package lands; this is the stopgap.

// topoOrder returns the nodes in a deterministic topological order.
func topoOrder(cfg *lang.Config) ([]string, error) {
	indeg := map[string]int{}
	next := map[string][]string{}
	for addr, n := range cfg.Nodes {
		indeg[addr] += 0
		for _, d := range n.DependsOn {
			if _, ok := cfg.Nodes[d]; !ok {
				continue
			}
			indeg[addr]++
			next[d] = append(next[d], addr)
		}
	}
	var ready, out []string
	for a, d := range indeg {
		if d == 0 {
			ready = append(ready, a)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		a := ready[0]
		ready = ready[1:]
		out = append(out, a)
		for _, b := range next[a] {
			indeg[b]--
			if indeg[b] == 0 {
				ready = append(ready, b)
			}
		}
	}
	if len(out) != len(cfg.Nodes) {
		return nil, fmt.Errorf("the graph has a cycle (upgrader validate names it)")
	}
	return out, nil
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
// at most parallelism at once. A node whose dependency failed is not visited.
func (r *run) walk(ctx context.Context, visit func(context.Context, string) error) error {
	return walkNodes(ctx, r.cfg, r.opts.parallelism(), visit)
}

func walkNodes(ctx context.Context, cfg *lang.Config, par int, visit func(context.Context, string) error) error {
	if _, err := topoOrder(cfg); err != nil {
		return err
	}
	indeg := map[string]int{}
	next := map[string][]string{}
	for addr, n := range cfg.Nodes {
		indeg[addr] += 0
		for _, d := range n.DependsOn {
			if _, ok := cfg.Nodes[d]; ok {
				indeg[addr]++
				next[d] = append(next[d], addr)
			}
		}
	}
	type result struct {
		addr string
		err  error
	}
	done := make(chan result)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var first error
	pending := len(indeg)
	start := func(a string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			err := visit(ctx, a)
			<-sem
			done <- result{a, err}
		}()
	}
	var ready []string
	for a, d := range indeg {
		if d == 0 {
			ready = append(ready, a)
		}
	}
	sort.Strings(ready)
	running := 0
	for _, a := range ready {
		start(a)
		running++
	}
	blocked := map[string]bool{}
	var block func(a string)
	block = func(a string) {
		for _, b := range next[a] {
			if !blocked[b] {
				blocked[b] = true
				pending--
				block(b)
			}
		}
	}
	for running > 0 {
		res := <-done
		running--
		pending--
		if res.err != nil {
			if first == nil {
				first = res.err
			}
			block(res.addr)
			continue
		}
		var nr []string
		for _, b := range next[res.addr] {
			indeg[b]--
			if indeg[b] == 0 && !blocked[b] {
				nr = append(nr, b)
			}
		}
		sort.Strings(nr)
		for _, b := range nr {
			start(b)
			running++
		}
	}
	wg.Wait()
	return first
}
