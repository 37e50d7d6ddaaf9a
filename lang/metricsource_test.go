package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/lang/langtest"
)

func TestMetricSource_decoded(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "token" {
  sensitive = true
}
metric_source "prom" {
  prometheus {
    url     = "http://127.0.0.1:9090"
    headers = { Authorization = "Bearer ${var.token}" }
    timeout = "5s"
  }
}
metric_source "plain" {
  prometheus {
    url = "https://prom.example:9090/prefix"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Vars: []string{"token=t0ken"}})
	for _, d := range diags {
		t.Fatalf("unexpected diagnostic: %s", langtest.DiagString(d))
	}
	m := cfg.MetricSources["prom"]
	if m == nil || m.Kind != "prometheus" || m.URL != "http://127.0.0.1:9090" || m.Timeout != 5*time.Second || m.Headers["Authorization"] != "Bearer t0ken" || m.SensitiveURL {
		t.Errorf("prom = %+v", m)
	}
	if p := cfg.MetricSources["plain"]; p == nil || p.Timeout != 10*time.Second || len(p.Headers) != 0 {
		t.Errorf("plain = %+v", p)
	}
}

// A sensitive url is never shown, not even when it is wrong.
func TestMetricSource_sensitiveURLHidden(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "u" {
  sensitive = true
}
metric_source "prom" {
  prometheus {
    url = var.u
  }
}
`
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644)
	_, diags := lang.Load(dir, testSchemas(), lang.Options{Vars: []string{"u=user:hunter2@prom:9090"}})
	if !diags.HasErrors() {
		t.Fatal("a url without scheme was accepted")
	}
	for _, d := range diags {
		if s := langtest.DiagString(d); strings.Contains(s, "hunter2") {
			t.Errorf("diagnostic shows the sensitive url: %s", s)
		}
	}
}
