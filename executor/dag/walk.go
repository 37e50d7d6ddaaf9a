package dag

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
)

// Report says what a walk did.
type Report struct {
	Done       []string         // ran and returned nil, in completion order
	Failed     map[string]error // ran and returned an error
	NotStarted []string         // never started (a failure, cancellation or a cycle stopped them), sorted
	// Cycle is set when the graph has cycles: nothing was started.
	Cycle *CycleError
	// Canceled is the context's error when it ended the walk early.
	Canceled error
}

// Err is nil when every node ran and succeeded; otherwise it says why not.
func (r *Report) Err() error {
	switch {
	case r.Cycle != nil:
		return r.Cycle
	case len(r.Failed) > 0:
		addrs := make([]string, 0, len(r.Failed))
		for a := range r.Failed {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		errs := make([]error, 0, len(addrs))
		for _, a := range addrs {
			errs = append(errs, fmt.Errorf("%s: %w", a, r.Failed[a]))
		}
		return errors.Join(errs...)
	case r.Canceled != nil:
		return r.Canceled
	case len(r.NotStarted) > 0:
		return fmt.Errorf("%d nodes not started", len(r.NotStarted))
	}
	return nil
}

type result struct {
	v   int
	err error
}

// Walk calls fn for every node once everything it depends on has returned
// nil, at most parallelism (at least 1) at a time, ready nodes smallest
// address first. After the first error, or once ctx is done, it starts
// nothing new but waits for the running calls to return. fn gets ctx.
func (g *Graph) Walk(ctx context.Context, parallelism int, fn func(ctx context.Context, addr string) error) *Report {
	rep := &Report{Failed: map[string]error{}}
	if cs := g.Cycles(); len(cs) > 0 {
		rep.Cycle = &CycleError{Cycles: cs}
		rep.NotStarted = g.Nodes()
		return rep
	}
	if parallelism < 1 {
		parallelism = 1
	}
	n := len(g.addrs)
	waiting := make([]int, n) // dependencies not yet done
	for v := range g.deps {
		waiting[v] = len(g.deps[v])
	}
	ready := &addrHeap{addrs: g.addrs}
	for v := 0; v < n; v++ {
		if waiting[v] == 0 {
			ready.items = append(ready.items, v)
		}
	}
	heap.Init(ready)
	started := make([]bool, n)
	// Buffered to parallelism, so a finishing call never blocks on us.
	results := make(chan result, parallelism)
	running := 0
	stop := false
	for {
		for !stop && running < parallelism && ready.Len() > 0 {
			if err := ctx.Err(); err != nil {
				rep.Canceled = err
				stop = true
				break
			}
			v := heap.Pop(ready).(int)
			started[v] = true
			running++
			go func(v int) {
				var err error
				defer func() {
					// A panicking node fails like any other instead of killing the run.
					if p := recover(); p != nil {
						err = fmt.Errorf("internal error (panic): %v", p)
					}
					results <- result{v: v, err: err}
				}()
				err = fn(ctx, g.addrs[v])
			}(v)
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			rep.Failed[g.addrs[r.v]] = r.err
			stop = true
			continue
		}
		rep.Done = append(rep.Done, g.addrs[r.v])
		for _, w := range g.dependents[r.v] {
			waiting[w]--
			if waiting[w] == 0 {
				heap.Push(ready, w)
			}
		}
	}
	if rep.Canceled == nil && len(rep.Failed) == 0 {
		if err := ctx.Err(); err != nil && len(rep.Done) < n {
			rep.Canceled = err
		}
	}
	for v := 0; v < n; v++ {
		if !started[v] {
			rep.NotStarted = append(rep.NotStarted, g.addrs[v])
		}
	}
	sort.Strings(rep.NotStarted)
	return rep
}
