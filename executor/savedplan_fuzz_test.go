package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadSavedPlan: any file given to `apply PLANFILE` is a saved plan or
// an error, never a panic; a loaded one compares with a fresh plan
// (Stale), the only thing apply does with it besides its variables.
func FuzzLoadSavedPlan(f *testing.F) {
	f.Add([]byte(`{"format":"upgrader-plan/1","config_hash":"abc","dir":"/x","facts":{"step.a web #1":{"sha256 /etc/app.conf":"00"}},"plan":{"nodes":[{}]}}`))
	f.Add([]byte(`{"format":"upgrader-plan/1","var_args":["a=b"],"sensitive_vars":["token"],"facts":null,"plan":null}`))
	f.Add([]byte(`{"format":"upgrader-plan/1","facts":{"k":null}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte("\x00\xff"))
	dir := f.TempDir()
	now := &Plan{ConfigHash: "abc", Facts: map[string]map[string]string{"step.a web #1": {"sha256 /etc/app.conf": "11"}, "new": {"f": "v"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "plan.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, ok, err := LoadSavedPlan(p)
		if (err == nil) != ok || (ok && sp == nil) {
			t.Fatalf("ok %v, err %v, plan %v", ok, err, sp)
		}
		if err != nil && !strings.Contains(err.Error(), "saved plan") {
			t.Fatalf("error does not say what was expected: %v", err)
		}
		if ok {
			sp.Stale(now)
			sp.Stale(&Plan{})
		}
	})
}
