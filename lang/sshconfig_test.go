package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/lang"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The HCL block wins over ssh_config, ssh_config over the defaults; every
// setting says where it came from.
func TestSSHConfig_precedence(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"ssh_config": "Host web\n  HostName 198.51.100.7\n  User fromfile\n  Port 2222\nHost *\n  UserKnownHostsFile ~/.ssh/kh\n",
		"main.hcl": `connection {
  ssh_config = "ssh_config"
  port       = 2200
}
host "web" {
  address = "web"
}
host "other" {
  address = "198.51.100.8"
  connection {
    user = "ops"
  }
}
`})
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	web, other := cfg.Hosts["web"], cfg.Hosts["other"]
	home, _ := os.UserHomeDir()
	if web.Address != "198.51.100.7" || web.Conn.User != "fromfile" || web.Conn.Port != 2200 || web.Conn.KnownHostsFile != home+"/.ssh/kh" {
		t.Errorf("web: %s %+v", web.Address, web.Conn)
	}
	if o := web.Conn.Origins; o["user"] != "ssh_config line 3" || o["port"] != "main.hcl:3" || o["address"] != "ssh_config line 2" || o["known_hosts_file"] != "ssh_config line 6" {
		t.Errorf("web origins: %v", o)
	}
	if other.Conn.User != "ops" || other.Conn.Origins["user"] != "main.hcl:11" || other.Address != "198.51.100.8" {
		t.Errorf("other: %s %+v", other.Address, other.Conn)
	}
}

// ssh_config mistakes are diagnostics at the ssh_config attribute; the
// default file is read only when present; "" turns it off.
func TestSSHConfig_errors(t *testing.T) {
	for name, c := range map[string]struct{ ssh, want string }{
		"match exec": {"Host a\n  User x\nMatch exec \"test -f /x\"\n  User y\n", "line 3: Match Exec is not supported"},
		"bad port":   {"Host *\n  Port http\n", "ssh_config:2, Port"},
		"bad jump":   {"Host *\n  ProxyJump a,,b\n", "empty hop"},
		"bad token":  {"Host *\n  IdentityFile ~/.ssh/%C\n", "token %C is not supported"},
	} {
		dir := writeDir(t, map[string]string{"ssh_config": c.ssh,
			"main.hcl": "connection {\n  ssh_config = \"ssh_config\"\n}\nhost \"a\" {\n  address = \"a\"\n}\n"})
		_, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
			t.Errorf("%s: %v", name, diags)
		}
	}
	dir := writeDir(t, map[string]string{"main.hcl": "connection {\n  ssh_config = \"none\"\n}\nhost \"a\" {\n  address = \"a\"\n}\n"})
	if _, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}}); !diags.HasErrors() || !strings.Contains(diags.Error(), "no such file") {
		t.Errorf("missing explicit file: %v", diags)
	}
	// The default ~/.ssh/config is read when present; ssh_config = "" turns it off.
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host *\n  Port 2222\n"), 0o600)
	for attr, port := range map[string]int{"": 2222, "ssh_config = \"\"": 22} {
		dir = writeDir(t, map[string]string{"main.hcl": "connection {\n  " + attr + "\n}\nhost \"a\" {\n  address = \"a\"\n}\n"})
		cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}})
		if diags.HasErrors() || cfg.Hosts["a"].Conn.Port != port {
			t.Errorf("%q: port %d, want %d %v", attr, cfg.Hosts["a"].Conn.Port, port, diags)
		}
	}
}

// sudo_password takes a sensitive variable (it is never printed).
func TestSudoPassword_sensitive(t *testing.T) {
	dir := writeDir(t, map[string]string{"main.hcl": `variable "pw" {
  type      = string
  sensitive = true
}
connection {
  ssh_config    = ""
  sudo_password = var.pw
}
host "a" {
  address = "198.51.100.9"
}
`})
	cfg, diags := lang.Load(dir, testSchemas(), lang.Options{Env: map[string]string{}, Vars: []string{"pw=s3cret"}})
	if diags.HasErrors() || cfg.Hosts["a"].Conn.SudoPassword != "s3cret" {
		t.Fatalf("%v", diags)
	}
}
