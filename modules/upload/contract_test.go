package upload

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The action suite of modules.go on a LocalHost: a changed file, a new file
// in new directories, a directory tree.
func TestUpload_contract(t *testing.T) {
	for _, c := range []struct{ name, dest, src string }{
		{"changed file", "app.conf", "files/app.conf"},
		{"new file in new dirs", "new/deep/app.conf", "files/app.conf"},
		{"directory", "static", "static"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, h := modtest.LocalRunner(t, "r1")
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "app.conf"), []byte("old\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			writeLocal(t, r.Dir, "files/app.conf", "new\n")
			writeLocal(t, r.Dir, "static/index.html", "<h1>v2</h1>\n")
			writeLocal(t, r.Dir, "static/css/site.css", "body{}\n")
			u := &Upload{}
			r.CheckContract(modtest.Contract{Action: u, Exec: h.Exec, Roots: []string{root},
				Config: r.Decode(u, fmt.Sprintf("upload {\n  source = %q\n  destination = %q\n}", c.src, filepath.Join(root, c.dest)))})
		})
	}
}
