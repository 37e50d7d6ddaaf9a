package template

import (
	"os"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// FuzzTemplate renders arbitrary template text with a sensitive variable
// through Validate, the masked rendering and the diff: no input may panic,
// and the secret never reaches the display text.
func FuzzTemplate(f *testing.F) {
	f.Add("version = ${version}\npassword = ${password}\n", "password = old\n")
	f.Add("%{ for x in [1,2] }${x}%{ endfor }${password}", "")
	f.Add("${", "x")
	f.Add("${upper(password)}${length(version)}", "a\nb\n")
	f.Fuzz(func(t *testing.T, tmpl, remote string) {
		dir := t.TempDir()
		if err := writeFile(dir+"/t.tmpl", tmpl); err != nil {
			t.Fatal(err)
		}
		src := []byte("template {\n  source = \"t.tmpl\"\n  destination = \"/etc/app/x\"\n  vars = { version = var.version, password = var.secret }\n}\n")
		cfg, ds := modtest.DecodeBlock("t.hcl", src, (&Template{}).Spec(), modtest.EvalContext(), dir)
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		_ = (&Template{}).Validate(cfg)
		r, err := renderFor(cfg, nil)
		if err != nil || r == nil {
			return
		}
		_ = unifiedDiff("a", "b", r.mask(remote), r.display)
		if contains(r.display, "hunter2") {
			t.Fatalf("display shows the secret: %q", r.display)
		}
	})
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
