// Package dag owns upgrader's dependency graph: nodes by address, edges
// from a node to what it depends on, cycle detection that names every node
// on each cycle, a stable topological order and the parallel walker.
//
// It is generic (addresses are strings) and imports nothing of upgrader's.
package dag

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
)

// Graph is a directed graph of nodes by address. An edge a -> b means a
// depends on b: b runs first. Build it from one goroutine, then read and
// walk it from any number.
type Graph struct {
	index      map[string]int
	addrs      []string
	deps       [][]int // node -> what it depends on
	dependents [][]int // node -> what depends on it
	selfLoop   []bool
}

// New returns an empty graph.
func New() *Graph { return &Graph{index: map[string]int{}} }

// Add adds a node (once; adding it again is a no-op) and returns its index.
func (g *Graph) Add(addr string) int {
	if i, ok := g.index[addr]; ok {
		return i
	}
	i := len(g.addrs)
	g.index[addr] = i
	g.addrs = append(g.addrs, addr)
	g.deps = append(g.deps, nil)
	g.dependents = append(g.dependents, nil)
	g.selfLoop = append(g.selfLoop, false)
	return i
}

// DependOn records that node depends on dep, adding both as needed.
// A repeated edge is kept once.
func (g *Graph) DependOn(node, dep string) {
	a, b := g.Add(node), g.Add(dep)
	for _, d := range g.deps[a] {
		if d == b {
			return
		}
	}
	g.deps[a] = append(g.deps[a], b)
	g.dependents[b] = append(g.dependents[b], a)
	if a == b {
		g.selfLoop[a] = true
	}
}

// Len is the number of nodes.
func (g *Graph) Len() int { return len(g.addrs) }

// Has reports whether addr is a node.
func (g *Graph) Has(addr string) bool { _, ok := g.index[addr]; return ok }

// Nodes returns every address, sorted.
func (g *Graph) Nodes() []string {
	out := append([]string(nil), g.addrs...)
	sort.Strings(out)
	return out
}

// DependsOn returns what addr depends on, sorted.
func (g *Graph) DependsOn(addr string) []string { return g.names(g.deps, addr) }

// Dependents returns what depends on addr, sorted.
func (g *Graph) Dependents(addr string) []string { return g.names(g.dependents, addr) }

func (g *Graph) names(adj [][]int, addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(adj[i]))
	for _, j := range adj[i] {
		out = append(out, g.addrs[j])
	}
	sort.Strings(out)
	return out
}

// Ancestors returns every node addr depends on, directly or not, sorted.
func (g *Graph) Ancestors(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	seen := make([]bool, len(g.addrs))
	stack := []int{i}
	var out []string
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g.deps[n] {
			if !seen[d] {
				seen[d] = true
				out = append(out, g.addrs[d])
				stack = append(stack, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Cycles returns every cycle of the graph as the group of nodes on it
// (a strongly connected component of more than one node, or a node that
// depends on itself). Each group is in edge order starting from its
// smallest address, and the groups are sorted by that address.
func (g *Graph) Cycles() [][]string {
	n := len(g.addrs)
	// Tarjan's algorithm, iterative so a long chain cannot blow the stack.
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	counter := 0
	comp := make([]int, n)
	var comps [][]int
	type frame struct{ v, next int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < len(g.deps[v]) {
				w := g.deps[v][f.next]
				f.next++
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			if low[v] == index[v] {
				var c []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = len(comps)
					c = append(c, w)
					if w == v {
						break
					}
				}
				comps = append(comps, c)
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				if low[v] < low[u] {
					low[u] = low[v]
				}
			}
		}
	}
	var out [][]string
	for ci, c := range comps {
		if len(c) == 1 && !g.selfLoop[c[0]] {
			continue
		}
		out = append(out, g.cycleOrder(c, ci, comp))
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// cycleOrder lists a component's nodes depth first along its edges from
// its smallest address, so the listing reads as the dependency chain.
func (g *Graph) cycleOrder(c []int, ci int, comp []int) []string {
	start := c[0]
	for _, v := range c {
		if g.addrs[v] < g.addrs[start] {
			start = v
		}
	}
	seen := map[int]bool{}
	var out []string
	stack := []int{start}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, g.addrs[v])
		var ds []int
		for _, d := range g.deps[v] {
			if comp[d] == ci && !seen[d] {
				ds = append(ds, d)
			}
		}
		// Largest first onto the stack, so the smallest is visited next.
		sort.Slice(ds, func(i, j int) bool { return g.addrs[ds[i]] > g.addrs[ds[j]] })
		stack = append(stack, ds...)
	}
	return out
}

// CycleError is returned when an order is asked of a graph with cycles.
type CycleError struct{ Cycles [][]string }

func (e *CycleError) Error() string {
	var parts []string
	for _, c := range e.Cycles {
		parts = append(parts, strings.Join(append(c, c[0]), " -> "))
	}
	return "dependency cycle: " + strings.Join(parts, "; ")
}

// TopoOrder returns every node after all it depends on. The order is
// stable: among nodes that are ready together, the smallest address first.
func (g *Graph) TopoOrder() ([]string, error) {
	if cs := g.Cycles(); len(cs) > 0 {
		return nil, &CycleError{Cycles: cs}
	}
	n := len(g.addrs)
	indeg := make([]int, n)
	for v := range g.deps {
		indeg[v] = len(g.deps[v])
	}
	h := &addrHeap{addrs: g.addrs}
	for v := 0; v < n; v++ {
		if indeg[v] == 0 {
			h.items = append(h.items, v)
		}
	}
	heap.Init(h)
	out := make([]string, 0, n)
	for h.Len() > 0 {
		v := heap.Pop(h).(int)
		out = append(out, g.addrs[v])
		for _, w := range g.dependents[v] {
			indeg[w]--
			if indeg[w] == 0 {
				heap.Push(h, w)
			}
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("dag: internal error: order has %d of %d nodes", len(out), n)
	}
	return out, nil
}

// addrHeap orders node indexes by address.
type addrHeap struct {
	addrs []string
	items []int
}

func (h *addrHeap) Len() int           { return len(h.items) }
func (h *addrHeap) Less(i, j int) bool { return h.addrs[h.items[i]] < h.addrs[h.items[j]] }
func (h *addrHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *addrHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *addrHeap) Pop() any {
	v := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return v
}
