package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/lang"
)

func loadState(t *testing.T, src string, env map[string]string) (*lang.Config, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = map[string]string{}
	}
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: env})
	var msgs []string
	for _, d := range diags {
		where := ""
		if d.Subject != nil {
			where = d.Subject.String()
		}
		msgs = append(msgs, where+" "+d.Summary+": "+d.Detail)
	}
	return cfg, strings.Join(msgs, "\n")
}

func TestState_postgres(t *testing.T) {
	cfg, diags := loadState(t, `
variable "state_dsn" {
  sensitive = true
  default   = "postgres://u:hunter2@db/state"
}
state {
  backend = "postgres"
  dsn     = var.state_dsn
  schema  = "upgrader_x"
  name    = "shop-prod"
  lease   = "90s"
}
`, nil)
	if diags != "" {
		t.Fatal(diags)
	}
	st := cfg.State
	if st == nil || st.Backend != "postgres" || st.DSN != "postgres://u:hunter2@db/state" || st.Schema != "upgrader_x" || st.Name != "shop-prod" || st.Lease != 90*time.Second {
		t.Fatalf("State = %+v", st)
	}
	cfg, diags = loadState(t, "state {\n  backend = \"postgres\"\n  name = \"w\"\n}\n", map[string]string{"UPGRADER_STATE_DSN": "postgres://x@y/z"})
	if diags != "" || cfg.State.DSN != "postgres://x@y/z" || cfg.State.Schema != "upgrader" || cfg.State.Lease != time.Minute {
		t.Fatalf("defaults and UPGRADER_STATE_DSN: %+v %s", cfg.State, diags)
	}
	cfg, _ = loadState(t, `step "s" {
  host = "x"
}`, nil)
	if cfg.State != nil {
		t.Fatalf("no state block: %+v", cfg.State)
	}
}

func TestState_invalid(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"state {\n  backend = \"pg\"\n}\n", `main.hcl:2,13-17 Invalid backend: backend is "local" (the state directory) or "postgres", not "pg". Did you mean "postgres"?`},
		{"state {\n  backend = \"postgres\"\n  dsn = \"postgres://a@b/c\"\n}\n", `main.hcl:1,1-6 Missing state name`},
		{"state {\n  backend = \"postgres\"\n  name = \"w\"\n}\n", `main.hcl:1,1-6 Missing state dsn`},
		{"state {\n  backend = \"postgres\"\n  dsn = \"postgres://a@b/c\"\n  name = \"../x\"\n}\n", `main.hcl:4,10-16 Invalid name`},
		{"state {\n  backend = \"postgres\"\n  dsn = \"postgres://a@b/c\"\n  name = \"w\"\n  schema = \"Drop Table\"\n}\n", `main.hcl:5,12-24 Invalid schema`},
		{"state {\n  backend = \"postgres\"\n  dsn = \"postgres://a@b/c\"\n  name = \"w\"\n  lease = \"10ms\"\n}\n", `main.hcl:5,11-17 Invalid lease`},
		{"state {\n  dsn = \"postgres://a@b/c\"\n}\n", `main.hcl:2,3-6 Unexpected dsn`},
		{"state {\n  backup_store = \"sftp://deploy@backup01/srv\"\n}\n", `main.hcl:2,18-46 Unsupported backup_store`},
		{"state {\n}\nstate {\n}\n", `main.hcl:3,1-6 Duplicate state block`},
		{"state \"x\" {\n}\n", `Extraneous label`},
		{"state {\n  bogus = 1\n}\n", `Unsupported argument`},
	} {
		_, diags := loadState(t, tc.src, nil)
		if !strings.Contains(diags, tc.want) {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, diags, tc.want)
		}
		if strings.Contains(diags, "postgres://a@b/c") {
			t.Errorf("the dsn was printed: %s", diags)
		}
	}
}
