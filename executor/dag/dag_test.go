package dag

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// build makes a graph from "a:b,c" lines (a depends on b and c).
func build(spec ...string) *Graph {
	g := New()
	for _, s := range spec {
		var node, deps string
		if i := indexByte(s, ':'); i >= 0 {
			node, deps = s[:i], s[i+1:]
		} else {
			node = s
		}
		g.Add(node)
		for _, d := range splitComma(deps) {
			g.DependOn(node, d)
		}
	}
	return g
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func TestGraph_topoStable(t *testing.T) {
	g := build("d:b,c", "c:a", "b:a", "a", "e")
	for i := 0; i < 5; i++ {
		got, err := g.TopoOrder()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"a", "b", "c", "d", "e"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("order = %v, want %v", got, want)
		}
	}
	g = build("z", "y:z", "a:y")
	got, _ := g.TopoOrder()
	if want := []string{"z", "y", "a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
}

func TestGraph_cycles(t *testing.T) {
	cases := []struct {
		name  string
		graph *Graph
		want  [][]string
	}{
		{"none", build("b:a", "c:b"), nil},
		{"two", build("a:b", "b:a"), [][]string{{"a", "b"}}},
		{"every node on a long cycle", build("a:b", "b:c", "c:d", "d:a", "e:a"), [][]string{{"a", "b", "c", "d"}}},
		{"self", build("a:a", "b:a"), [][]string{{"a"}}},
		{"two cycles", build("a:b", "b:a", "x:y", "y:z", "z:x", "m:a,x"), [][]string{{"a", "b"}, {"x", "y", "z"}}},
		{"figure eight", build("a:b", "b:a,c", "c:b"), [][]string{{"a", "b", "c"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.graph.Cycles()
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Cycles = %v, want %v", got, c.want)
			}
			_, err := c.graph.TopoOrder()
			if (err != nil) != (c.want != nil) {
				t.Errorf("TopoOrder error = %v", err)
			}
		})
	}
}

func TestGraph_cycleDeepChain(t *testing.T) {
	// A 50,000-node chain closing on itself: no recursion limit in Tarjan.
	g := New()
	const n = 50000
	for i := 0; i < n; i++ {
		g.DependOn(fmt.Sprintf("n%06d", i), fmt.Sprintf("n%06d", (i+1)%n))
	}
	cs := g.Cycles()
	if len(cs) != 1 || len(cs[0]) != n {
		t.Fatalf("got %d cycles", len(cs))
	}
}

func TestGraph_ancestors(t *testing.T) {
	g := build("d:b,c", "c:a", "b:a", "a", "e:d")
	if got := g.Ancestors("e"); !reflect.DeepEqual(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Ancestors(e) = %v", got)
	}
	if got := g.Dependents("a"); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("Dependents(a) = %v", got)
	}
}

func TestWalker_order(t *testing.T) {
	g := build("d:b,c", "c:a", "b:a", "a")
	var mu sync.Mutex
	done := map[string]bool{}
	rep := g.Walk(context.Background(), 4, func(ctx context.Context, addr string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range g.DependsOn(addr) {
			if !done[d] {
				return fmt.Errorf("%s started before %s finished", addr, d)
			}
		}
		done[addr] = true
		return nil
	})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Done) != 4 || len(rep.NotStarted) != 0 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestWalker_failedUpstream(t *testing.T) {
	// a -> b (fails) -> c; x independent and slow: it finishes, c never starts.
	g := build("b:a", "c:b", "x")
	boom := errors.New("boom")
	release := make(chan struct{})
	var xDone atomic.Bool
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	rep := g.Walk(context.Background(), 4, func(ctx context.Context, addr string) error {
		switch addr {
		case "b":
			return boom
		case "x":
			<-release
			xDone.Store(true)
		}
		return nil
	})
	if !errors.Is(rep.Failed["b"], boom) {
		t.Errorf("Failed = %v", rep.Failed)
	}
	if !reflect.DeepEqual(rep.NotStarted, []string{"c"}) {
		t.Errorf("NotStarted = %v", rep.NotStarted)
	}
	sort.Strings(rep.Done)
	if !reflect.DeepEqual(rep.Done, []string{"a", "x"}) || !xDone.Load() {
		t.Errorf("Done = %v (running x must be let finish)", rep.Done)
	}
	if !errors.Is(rep.Err(), boom) {
		t.Errorf("Err = %v", rep.Err())
	}
}

func TestWalker_stopsStartingAfterFailure(t *testing.T) {
	// Parallelism 1: after "a" fails, the independent "b" and "c" are not started.
	g := build("a", "b", "c")
	var ran []string
	rep := g.Walk(context.Background(), 1, func(ctx context.Context, addr string) error {
		ran = append(ran, addr)
		return errors.New("no")
	})
	if !reflect.DeepEqual(ran, []string{"a"}) || !reflect.DeepEqual(rep.NotStarted, []string{"b", "c"}) {
		t.Errorf("ran %v, not started %v", ran, rep.NotStarted)
	}
}

func TestWalker_parallelism(t *testing.T) {
	g := New()
	for i := 0; i < 50; i++ {
		g.Add(fmt.Sprintf("n%02d", i))
	}
	var cur, peak atomic.Int32
	rep := g.Walk(context.Background(), 5, func(ctx context.Context, addr string) error {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		cur.Add(-1)
		return nil
	})
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	if p := peak.Load(); p != 5 {
		t.Errorf("peak concurrency = %d, want 5", p)
	}
}

func TestWalker_readyRunsAtOnce(t *testing.T) {
	// slow blocks until b2 (two steps down an independent chain) has run:
	// the walker must not wait for slow before starting b1 and b2.
	g := build("slow", "b1", "b2:b1")
	b2ran := make(chan struct{})
	rep := g.Walk(context.Background(), 2, func(ctx context.Context, addr string) error {
		switch addr {
		case "slow":
			select {
			case <-b2ran:
				return nil
			case <-time.After(5 * time.Second):
				return errors.New("b2 never ran while slow was running")
			}
		case "b2":
			close(b2ran)
		}
		return nil
	})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestWalker_cancel(t *testing.T) {
	g := build("a", "b:a", "c:b")
	ctx, cancel := context.WithCancel(context.Background())
	rep := g.Walk(ctx, 1, func(ctx context.Context, addr string) error {
		if addr == "a" {
			cancel()
		}
		return nil
	})
	if !errors.Is(rep.Err(), context.Canceled) || !reflect.DeepEqual(rep.NotStarted, []string{"b", "c"}) {
		t.Errorf("report = %+v, err %v", rep, rep.Err())
	}
}

func TestWalker_cycleRefused(t *testing.T) {
	g := build("a:b", "b:a", "c")
	called := false
	rep := g.Walk(context.Background(), 2, func(ctx context.Context, addr string) error { called = true; return nil })
	var ce *CycleError
	if called || !errors.As(rep.Err(), &ce) || len(rep.NotStarted) != 3 {
		t.Errorf("called=%v report=%+v", called, rep)
	}
}

func TestWalker_panicIsFailure(t *testing.T) {
	g := build("a", "b:a")
	rep := g.Walk(context.Background(), 2, func(ctx context.Context, addr string) error { panic("oops") })
	if rep.Failed["a"] == nil || !reflect.DeepEqual(rep.NotStarted, []string{"b"}) {
		t.Errorf("report = %+v", rep)
	}
}

// layered builds n nodes in layers of width, each depending on two nodes
// of the layer before.
func layered(n, width int) *Graph {
	g := New()
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("step.n%05d", i)
		g.Add(addr)
		if i >= width {
			l := i/width - 1
			g.DependOn(addr, fmt.Sprintf("step.n%05d", l*width+i%width))
			g.DependOn(addr, fmt.Sprintf("step.n%05d", l*width+(i+1)%width))
		}
	}
	return g
}

func BenchmarkWalk10000(b *testing.B) {
	g := layered(10000, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep := g.Walk(context.Background(), 10, func(ctx context.Context, addr string) error { return nil })
		if len(rep.Done) != 10000 {
			b.Fatalf("done %d", len(rep.Done))
		}
	}
}

func BenchmarkTopoOrder10000(b *testing.B) {
	g := layered(10000, 100)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := g.TopoOrder(); err != nil {
			b.Fatal(err)
		}
	}
}
