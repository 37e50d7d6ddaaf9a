package executor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/lang"
)

// A template renders with the language's functions (Env.Functions), not
// only template's own small set, on a real host.
func TestHosts_templateUsesLanguageFunctions(t *testing.T) {
	bed, dir := hostConfig(t, []string{"template_funcs.hcl", "funcs.conf.tmpl"}, "web")
	web := bed.Host("web")
	if _, err := web.Exec(context.Background(), "mkdir -p /tmp/app && chown deploy /tmp/app"); err != nil {
		t.Fatal(err)
	}
	opts := loadReal(t, dir)
	sum, err := Apply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcome != OutcomeDone {
		t.Fatalf("outcome %s: %s", sum.Outcome, sum.Error)
	}
	want := `name = APP (App)
servers = a.example,b.example
port = 00080
json = {"name":"app","servers":["b.example","a.example"]}
b64 = YXBw
upstream a.example;
upstream b.example;
max = 8080
block:
a
  b
`
	if got := hostFile(t, web, "/tmp/app/app.conf"); got != want {
		t.Errorf("/tmp/app/app.conf =\n%s\nwant\n%s", got, want)
	}
}

// Validate renders a template with the language's functions too: a
// misspelt one is reported in the template file, before any host is touched.
func TestValidate_templateUnknownFunctionInTemplateFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"main.hcl": `host "web" {
  address = "198.51.100.10"
}
step "conf" {
  host            = host.web
  backup_required = false
  template {
    source      = "t.tmpl"
    destination = "/tmp/app.conf"
    vars        = { name = "app" }
  }
}
`,
		"t.tmpl": "ok = ${title(name)}\nbad = ${titel(name)}\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := realRegistry()
	cfg, ds := lang.Load(dir, Schemas(reg), lang.Options{Env: map[string]string{}})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	var errs hcl.Diagnostics
	for _, d := range Validate(cfg, reg) {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	ds = errs
	if len(ds) != 1 || ds[0].Summary != "Call to unknown function" || ds[0].Subject == nil ||
		filepath.Base(ds[0].Subject.Filename) != "t.tmpl" || ds[0].Subject.Start.Line != 2 {
		t.Fatalf("diagnostics: %v", ds)
	}
}
