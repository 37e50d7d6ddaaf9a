package lang_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/langtest"
)

// TestLoad_hostSets: a host with for_each is one host per key, named by
// the key; host.NAME is the set, host.NAME["KEY"] one host, values(host.NAME)
// every host in key order; a step takes any of them.
func TestLoad_hostSets(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "web" {
  type    = map(string)
  default = { "web-02" = "198.51.100.2", "web-01" = "198.51.100.1", "web-10" = "198.51.100.10" }
}
host "web" {
  for_each = var.web
  address  = each.value
  labels   = { role = "web", key = each.key }
}
host "db" {
  for_each = toset(["198.51.100.20"])
  address  = each.key
}
database "app" {
  driver = "postgres"
  dsn    = "postgres://app@localhost/app"
  host   = host.web["web-01"]
}
step "all" {
  hosts = values(host.web)
  run { command = "true" }
}
step "set" {
  hosts = host.web
  run { command = "true" }
}
step "one" {
  host = host.web["web-10"]
  run { command = "true" }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := lang.Load(dir, testSchemas(), testOptions(t, dir))
	for _, d := range ds {
		t.Errorf("diagnostic: %s", langtest.DiagString(d))
	}
	if cfg == nil {
		t.Fatal("no config")
	}
	h := cfg.Hosts["web-10"]
	if h == nil || h.Address != "198.51.100.10" || h.Set != "web" || h.Labels["key"] != "web-10" {
		t.Fatalf("web-10: %+v", h)
	}
	if hs := cfg.HostSets["web"]; hs == nil || !reflect.DeepEqual(hs.Keys, []string{"web-01", "web-02", "web-10"}) {
		t.Fatalf("set: %+v", hs)
	}
	if h := cfg.Hosts["198.51.100.20"]; h == nil || h.Address != "198.51.100.20" {
		t.Fatalf("a set of strings: %+v", h)
	}
	if cfg.Databases["app"].Host != "web-01" {
		t.Errorf("database host = %q", cfg.Databases["app"].Host)
	}
	for step, want := range map[string][]string{"step.all": {"web-01", "web-02", "web-10"}, "step.set": {"web-01", "web-02", "web-10"}, "step.one": {"web-10"}} {
		if got := cfg.Nodes[step].Step.HostNames; !reflect.DeepEqual(got, want) {
			t.Errorf("%s hosts %v, want %v", step, got, want)
		}
	}
	v := cfg.EvalContext(lang.RunInfo{}, nil).Variables["host"].GetAttr("web").GetAttr("web-02").GetAttr("address")
	if v != cty.StringVal("198.51.100.2") {
		t.Errorf(`host.web["web-02"].address = %#v`, v)
	}
}
