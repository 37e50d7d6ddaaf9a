package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCanary_everyOutput runs a procedure whose commands, template and
// failure all carry a canary secret (a long token, a password with quotes
// and a backslash in a field of a sensitive object, and values computed from
// them: base64, %q, shell-quoted) on a real host, and searches every output
// for every form of it: plan (human, -json, saved file), apply (human,
// -json), the journal and everything else in the state directory (report,
// state, output), rollback's refusals. Then the digests: a saved plan goes
// stale when a sensitive value changes, and rollback refuses without the
// values the run started with (issue 13.3, 13.8, 13.9).
func TestCanary_everyOutput(t *testing.T) {
	token := "C4NARY-tok-" + strings.Repeat("x", 90) // past any 80-character cut
	password := `p"w\C4NARY'd`
	forms := []string{"C4NARY", base64.StdEncoding.EncodeToString([]byte(token))[:24], strings.Repeat("x", 40)}
	bed := startBed(t, "web")
	web := bed.Host("web")
	if _, err := web.Exec(context.Background(), `printf 'token = OLD-C4NARY\npassword: "old"\n' > /opt/app.conf && chown deploy /opt/app.conf`); err != nil {
		t.Fatal(err)
	}
	dir := configDir(t, bed, "canary.hcl", "canary.tmpl")
	vars := []string{"-var", "token=" + token, "-var", fmt.Sprintf(`db={ user = "app", password = %q }`, password)}
	var outputs []string
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := upgrader(args...)
		if code != want {
			t.Fatalf("upgrader %s: exit %d, want %d\n%s\n%s", args[0], code, want, out, errs)
		}
		outputs = append(outputs, strings.Join(args[:1], " ")+":\n"+out+errs)
		return out + errs
	}
	planFile := filepath.Join(t.TempDir(), "saved.plan")
	run(0, append(append([]string{"plan", "-no-color", "-out", planFile}, vars...), dir)...)
	run(0, append(append([]string{"plan", "-json"}, vars...), dir)...)
	out := run(exitFailedRolledBack, append(append([]string{"apply", "-no-color"}, vars...), planFile)...)
	if !strings.Contains(out, "rolled back") && !strings.Contains(out, "rolled_back") {
		t.Errorf("apply did not roll back:\n%s", out)
	}
	// the host got the real values
	if got := hostCat(t, web, "/opt/token.sha"); len(got) != 64 {
		t.Errorf("token.sha = %q", got)
	}
	if got := hostCat(t, web, "/opt/app.conf"); got != "token = OLD-C4NARY\npassword: \"old\"" {
		t.Errorf("the template was not undone: %q", got)
	}
	run(exitFailedRolledBack, append(append([]string{"apply", "-json", "-auto-approve"}, vars...), dir)...)

	// 13.9: a run that finished; rolling it back without the token (its
	// default is another value) or with another one is refused, naming it;
	// with the values it started with, the rollback runs
	run(exitOK, append(append([]string{"apply", "-no-color", "-auto-approve", "-var", "fail=false"}, vars...), dir)...)
	for _, tok := range [][]string{nil, {"-var", "token=other-token"}} {
		out = run(exitInvalid, append(append([]string{"rollback", "-no-color", "-var", vars[3]}, tok...), dir)...)
		if !strings.Contains(out, "var.token set to another value") || strings.Contains(out, "var.db") {
			t.Errorf("rollback with token %v:\n%s", tok, out)
		}
	}
	run(exitOK, append(append([]string{"rollback", "-no-color"}, vars...), dir)...)
	if got := hostCat(t, web, "/opt/app.conf"); got != "token = OLD-C4NARY\npassword: \"old\"" {
		t.Errorf("the rollback did not restore the template: %q", got)
	}
	// 13.8: a saved plan is stale when a sensitive value changed
	run(0, append(append([]string{"plan", "-no-color", "-out", planFile}, vars...), dir)...)
	out = run(exitInvalid, append([]string{"apply", "-no-color", "-var", "token=C4NARY-rotated", "-var", vars[3]}, planFile)...)
	if !strings.Contains(out, "stale") || !strings.Contains(out, "sensitive variable token has another value than when planned") {
		t.Errorf("stale plan:\n%s", out)
	}

	for _, o := range outputs {
		for _, f := range forms {
			if strings.Contains(o, f) {
				t.Errorf("output holds %q:\n%s", f, o)
			}
		}
	}
	for _, f := range forms {
		assertNoCanary(t, f, filepath.Join(dir, ".upgrader"), planFile)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".upgrader", "secret.key")); len(b) != 32 {
		t.Errorf("secret.key holds %d bytes", len(b))
	}
}
