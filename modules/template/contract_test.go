package template

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The action suite of modules.go on a LocalHost: a rendered file replacing
// an existing one, and a new one.
func TestTemplate_contract(t *testing.T) {
	for _, dest := range []string{"app.conf", "conf.d/new.conf"} {
		t.Run(dest, func(t *testing.T) {
			r, h := modtest.LocalRunner(t, "r1")
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "app.conf"), []byte("port = 1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(r.Dir, "app.conf.tpl"), []byte("port = ${port}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := &Template{}
			r.CheckContract(modtest.Contract{Action: m, Exec: h.Exec, Roots: []string{root},
				Config: r.Decode(m, fmt.Sprintf("template {\n  source = \"app.conf.tpl\"\n  destination = %q\n  vars = { port = 8080 }\n}", filepath.Join(root, dest)))})
		})
	}
}
