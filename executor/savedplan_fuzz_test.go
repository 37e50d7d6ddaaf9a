package executor_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
)

// FuzzLoadSavedPlan feeds arbitrary bytes to the saved-plan reader (a plan
// file is outside input: it may be edited, truncated or crafted). Nothing may
// panic or hang; a plan it accepts is well formed (absolute dir, NAME=VALUE
// variables, a plan body), is not stale against its own content, and reads
// back the same after being written again. Seeds: testdata/fuzz/FuzzLoadSavedPlan.
//
//	go test ./executor -run XXX -fuzz FuzzLoadSavedPlan -fuzztime 60s
func FuzzLoadSavedPlan(f *testing.F) {
	f.Add([]byte(`{"format":"upgrader-plan/1","config_hash":"ab","dir":"/srv/app","var_args":["version=1"],"facts":{"step.a web #1":{"sha256 /x":"00"}},"plan":{"config_hash":"ab","dir":"/srv/app","nodes":[]}}`))
	f.Add([]byte(`{"format":"upgrader-plan/1","dir":"relative","plan":{}}`))
	f.Add([]byte(`{"format":"upgrader-plan/1","dir":"/a","plan":null,"facts":{"x":null}}`))
	f.Add([]byte(`{"format":"upgrader-plan/1"`))
	f.Add([]byte("\x00\xff"))
	f.Add([]byte(`{"format":"upgrader-plan/1","var_args":["a=b"],"sensitive_vars":["token"],"facts":null,"plan":null}`))
	f.Add([]byte(`{}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		timer := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("LoadSavedPlan did not return within 10s on %q", data))
		})
		defer timer.Stop()
		path := filepath.Join(dir, "p.plan")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, ok, err := executor.LoadSavedPlan(path)
		if (err == nil) != ok || (ok && sp == nil) {
			t.Fatalf("ok %v, err %v, plan %v", ok, err, sp)
		}
		if err != nil && !strings.Contains(err.Error(), "saved plan") {
			t.Fatalf("the error does not say what was expected: %v", err)
		}
		if !ok {
			return
		}
		if sp.Format != executor.SavedPlanFormat || sp.Plan == nil || !filepath.IsAbs(sp.Dir) {
			t.Fatalf("accepted a malformed plan: format %q, plan %v, dir %q", sp.Format, sp.Plan != nil, sp.Dir)
		}
		for _, a := range sp.VarArgs {
			if name, _, found := cutEq(a); !found || name == "" {
				t.Fatalf("accepted var_args entry %q", a)
			}
		}
		if d := sp.Stale(&executor.Plan{ConfigHash: sp.ConfigHash, Facts: sp.Facts, SensitiveDigests: sp.Plan.SensitiveDigests}); len(d) != 0 {
			t.Fatalf("stale against its own content: %v", d)
		}
		_ = sp.Stale(&executor.Plan{})
		// written again, it reads back, and the next write is the same
		b1 := roundTrip(t, sp, path)
		sp2, _, _ := executor.LoadSavedPlan(path)
		if b2 := roundTrip(t, sp2, path); !bytes.Equal(b1, b2) {
			t.Fatalf("reads back differently:\n%s\n%s", b1, b2)
		}
	})
}

// roundTrip writes sp to path and reads it back; it returns what it wrote.
func roundTrip(t *testing.T, sp *executor.SavedPlan, path string) []byte {
	t.Helper()
	b, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := executor.LoadSavedPlan(path); err != nil || !ok {
		t.Fatalf("does not read back: %v\n%s", err, b)
	}
	return b
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
