package executor

import (
	"context"
	"testing"
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
