package observe

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/tools/txtar"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// localHost is modtest.LocalHost (the sampling script in this machine's
// /bin/sh against real files, no SSH) that a test can take down as a dead
// transport would.
type localHost struct {
	modtest.LocalHost
	down atomic.Bool
}

func newLocalHost(name string) *localHost {
	h := &localHost{}
	h.LocalHost = modtest.LocalHost{Name: name, Down: h.down.Load}
	return h
}

var _ modules.Target = (*localHost)(nil)

// evalContext offers host.* and check.* references as lang would.
func evalContext(hosts, checks []string) *hcl.EvalContext {
	hv := map[string]cty.Value{}
	for _, h := range hosts {
		hv[h] = cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal(h), "address": cty.StringVal("198.51.100.1"), "port": cty.NumberIntVal(22),
			"user": cty.StringVal("deploy"), "labels": cty.MapValEmpty(cty.String),
		})
	}
	cv := map[string]cty.Value{}
	for _, c := range checks {
		cv[c] = cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal(c), "kind": cty.StringVal("check"), "passed": cty.UnknownVal(cty.Bool),
		})
	}
	vars := map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{
			"later":  cty.UnknownVal(cty.String).Mark("after:step.build"),
			"secret": cty.StringVal("token=hunter2(").Mark(modtest.SensitiveMark),
		}),
	}
	if len(hv) > 0 {
		vars["host"] = cty.ObjectVal(hv)
	}
	// metric_source.prom, as lang gives it.
	vars["metric_source"] = cty.ObjectVal(map[string]cty.Value{"prom": cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal("prom"), "type": cty.StringVal("prometheus"),
	})})
	if len(cv) > 0 {
		vars["check"] = cty.ObjectVal(cv)
	}
	return &hcl.EvalContext{Variables: vars}
}

// decode decodes an observe block as the executor does, adding the
// "log.N.ATTR" ranges of nested blocks (see modules.Config.Ranges).
func decode(t testing.TB, filename string, src []byte, hosts, checks []string) (*modules.Config, hcl.Diagnostics) {
	t.Helper()
	cfg, ds := modtest.DecodeBlock(filename, src, New().Spec(), evalContext(hosts, checks), filepath.Dir(filename))
	if cfg == nil {
		return nil, ds
	}
	f, _ := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	blk := f.Body.(*hclsyntax.Body).Blocks[0]
	n := map[string]int{}
	for _, b := range blk.Body.Blocks {
		i := n[b.Type]
		n[b.Type]++
		cfg.Ranges[b.Type+"."+strconv.Itoa(i)] = b.DefRange()
		for name, a := range b.Body.Attributes {
			cfg.Ranges[b.Type+"."+strconv.Itoa(i)+"."+name] = a.Expr.Range()
		}
	}
	return cfg, ds
}

// mustSettings decodes src and parses it at apply time.
func mustSettings(t testing.TB, src string, hosts, checks []string) (*modules.Config, *settings) {
	t.Helper()
	cfg, ds := decode(t, "observe.hcl", []byte(src), hosts, checks)
	if ds.HasErrors() {
		t.Fatalf("decode: %s", ds.Error())
	}
	s, ds := parseSettings(cfg, false)
	if ds.HasErrors() {
		t.Fatalf("settings: %s", ds.Error())
	}
	return cfg, s
}

// unquoteArgs splits a line into words, Go-quoted strings being one word.
func unquoteArgs(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, err
			}
			s, _ := strconv.Unquote(q)
			out = append(out, s)
			line = line[len(q):]
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			i = len(line)
		}
		out = append(out, line[:i])
		line = line[i:]
	}
	return out, nil
}

// syncWriter is a strings.Builder safe for the window's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// eachCase runs fn as a subtest for every file matching glob, with the
// file's contents; txtar files are also split into their sections.
func eachCase(t *testing.T, glob string, fn func(t *testing.T, src []byte, sec map[string][]byte)) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no cases match %s", glob)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sec := map[string][]byte{}
			for _, f := range txtar.Parse(src).Files {
				sec[f.Name] = f.Data
			}
			fn(t, src, sec)
		})
	}
}
