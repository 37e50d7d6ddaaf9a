package lang_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/dag"
	"github.com/upgrader-dev/upgrader/lang"
)

// FuzzLoad feeds arbitrary bytes to the loader as a configuration file and
// drives what follows a load: the graph (cycles, order), the evaluation
// scope and the decode of every body. Nothing may panic; errors must be
// diagnostics. The seeds are every .hcl file under testdata, plus
// testdata/fuzz/FuzzLoad.
//
//	go test ./lang -run XXX -fuzz FuzzLoad -fuzztime 60s
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/*.hcl")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	schemas := testSchemas()
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		// A hang is a bug too: fail (and keep the input) after 10 s.
		timer := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("Load did not return within 10s on %q", src))
		})
		defer timer.Stop()
		cfg, diags := lang.Load(dir, schemas, lang.Options{Env: map[string]string{}})
		if cfg == nil {
			t.Fatal("Load returned a nil Config")
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Errorf("diagnostic without summary: %#v", d)
			}
		}
		if diags.HasErrors() {
			return
		}
		g := dag.New()
		for addr, n := range cfg.Nodes {
			g.Add(addr)
			for _, d := range n.DependsOn {
				if cfg.Nodes[d] == nil {
					t.Errorf("%s depends on unknown node %s", addr, d)
				}
				g.DependOn(addr, d)
				_ = cfg.DependencyRange(n, d)
			}
		}
		if _, err := g.TopoOrder(); err != nil && len(g.Cycles()) == 0 {
			t.Errorf("no order and no cycle: %v", err)
		}
		ctx := cfg.EvalContext(lang.RunInfo{}, nil)
		for _, n := range cfg.Nodes {
			if n.Body != nil {
				lang.DecodeBody(n.Body, n.Spec, ctx)
			}
			if n.When != nil {
				n.When.Value(ctx)
			}
			if n.Step != nil {
				cfg.StepHosts(n, ctx)
				for _, b := range append(n.Step.Actions, n.Step.Rollback...) {
					lang.DecodeBody(b.Body, b.Spec, ctx)
				}
			}
			if n.Check != nil {
				for _, b := range n.Check.Probes {
					lang.DecodeBody(b.Body, b.Spec, ctx)
				}
			}
		}
	})
}
