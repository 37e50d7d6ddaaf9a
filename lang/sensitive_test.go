package lang_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// canary is a secret with the characters that escaping changes: quotes,
// a backslash, a newline, a shell metacharacter.
const canary = "s3cr\"et'C4NARY\\$(x)\nline-two-of-the-canary"

// TestSensitiveStrings_derived: every value computed from a sensitive one
// stays marked (functions, templates, fields of a sensitive object), and
// SensitiveStrings finds its text, so Secrets can scrub it.
func TestSensitiveStrings_derived(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "secret" {
  sensitive = true
}
variable "db" {
  type      = object({ user = string, password = string, port = number })
  sensitive = true
}
locals {
  b64    = base64encode(var.secret)
  quoted = format("%q", var.secret)
  shell  = shellquote(var.secret)
  cmd    = "app --token ${shellquote(var.secret)} --long-option-to-pass-80-chars-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
  user   = var.db.user
  json   = jsonencode({ t = var.secret })
  plain  = "hello"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{
		"UPGRADER_VAR_secret": canary,
		"UPGRADER_VAR_db":     `{ user = "dbuser-C4NARY", password = "pw-C4NARY", port = 5433 }`,
	}})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	set := modules.NewSecrets()
	for _, v := range cfg.Variables {
		set.Add(lang.SensitiveStrings(v.Value)...)
	}
	for name, v := range cfg.Locals {
		if name == "plain" {
			if lang.IsSensitive(v) || len(lang.SensitiveStrings(v)) != 0 {
				t.Errorf("local.plain is sensitive")
			}
			continue
		}
		if !lang.IsSensitive(v) {
			t.Errorf("local.%s lost the sensitive mark", name)
		}
		set.Add(lang.SensitiveStrings(v)...)
	}
	for name, v := range cfg.Locals {
		raw, _ := v.UnmarkDeep()
		text := raw.AsString()
		for _, shown := range []string{
			"error: " + text + " failed",
			"exit 1: " + strings.ReplaceAll(text, "\n", "\n  "),
		} {
			if out := set.Redact(shown); strings.Contains(out, "C4NARY") && name != "plain" {
				t.Errorf("local.%s leaks through Redact: %q", name, out)
			}
		}
	}
	// the forms a value takes when code prints it
	for _, shown := range []string{
		canary, fmt.Sprintf("%q", canary), fmt.Sprintf("%+q", canary),
		"dsn=" + "pw-C4NARY", "port 5433 user dbuser-C4NARY",
	} {
		if out := set.Redact(shown); strings.Contains(out, "C4NARY") {
			t.Errorf("leak: %q", out)
		}
	}
	if out := set.Redact("version 1.2.3 on host web"); out != "version 1.2.3 on host web" {
		t.Errorf("ordinary text changed: %q", out)
	}
}

// TestShellquote: the quoted word reaches a real shell as the exact value.
func TestShellquote(t *testing.T) {
	dir := t.TempDir()
	src := "locals {\n  q = shellquote(var.v)\n}\nvariable \"v\" {}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "plain", "it's", `a"b\c $(id) ` + "`id` ;|&*?\n'' x", canary} {
		cfg, ds := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{"UPGRADER_VAR_v": v}})
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		q := cfg.Locals["q"].AsString()
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+q).Output()
		if err != nil || string(out) != v {
			t.Errorf("shellquote(%q) = %s: sh printed %q (%v)", v, q, out, err)
		}
	}
}
