package sshconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	f, err := Parse("testdata/config")
	if err != nil {
		t.Fatal(err)
	}
	got := func(h *Host) map[string]Setting { return h.Settings }
	db := f.Resolve("prod-db")
	want := map[string]Setting{
		"hostname":           {"%h.internal.example", 7},
		"proxyjump":          {"bastion,jumper2@inner:2222", 8},
		"identitiesonly":     {"yes", 10},
		"user":               {"deploy", 13}, // Match host sees the HostName
		"port":               {"2200", 14},
		"userknownhostsfile": {"~/.ssh/known_hosts.prod ~/.ssh/known_hosts2", 15},
		"hashknownhosts":     {"yes", 18},
	}
	if !reflect.DeepEqual(got(db), want) {
		t.Errorf("prod-db:\n got %v\nwant %v", got(db), want)
	}
	if !reflect.DeepEqual(db.Identity, []Setting{{"~/.ssh/id_prod", 9}, {"~/.ssh/id_ed25519", 22}}) {
		t.Errorf("identities %v", db.Identity)
	}
	web := f.Resolve("prod-web")
	if _, ok := web.Get("hashknownhosts"); ok {
		t.Errorf("negated pattern matched prod-web")
	}
	b := f.Resolve("bastion")
	if u, _ := b.Get("user"); u != (Setting{"jumper", 4}) || u.Origin() != "ssh_config line 4" {
		t.Errorf("bastion user %v", u)
	}
	if _, ok := f.Resolve("other").Get("port"); ok {
		t.Errorf("other got a port")
	}
}

func TestParse_errors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	os.WriteFile(p, []byte("Host a\n  User x\nMatch exec \"true\"\n  User y\n"), 0o600)
	if _, err := Parse(p); err == nil || !strings.Contains(err.Error(), "line 3: Match Exec is not supported") {
		t.Errorf("match exec: %v", err)
	}
	if _, err := Parse(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
}

func TestExpandAndJumps(t *testing.T) {
	home, _ := os.UserHomeDir()
	if s, err := Expand("~/.ssh/%r@%h-%%", "deploy", "db1"); err != nil || s != home+"/.ssh/deploy@db1-%" {
		t.Errorf("%q %v", s, err)
	}
	if _, err := Expand("%C", "", ""); err == nil {
		t.Error("%C accepted")
	}
	j, err := ParseJumps("bastion, ops@inner:2222,[2001:db8::1]:22")
	if err != nil || !reflect.DeepEqual(j, []Jump{{Host: "bastion"}, {User: "ops", Host: "inner", Port: 2222}, {Host: "2001:db8::1", Port: 22}}) {
		t.Errorf("%+v %v", j, err)
	}
	if j, err := ParseJumps("none"); j != nil || err != nil {
		t.Errorf("none: %v %v", j, err)
	}
	if _, err := ParseJumps("a,,b"); err == nil {
		t.Error("empty hop accepted")
	}
}

// No file content makes Parse or Resolve panic.
func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/config")
	f.Add(string(seed))
	f.Add("Match exec x\n")
	f.Add("Host a\n  HostName %h\n  ProxyJump [::1]:2,b@c\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := Parse(p)
		if err != nil {
			return
		}
		h := file.Resolve("prod-db")
		if s, ok := h.Get("proxyjump"); ok {
			ParseJumps(s.Value)
		}
		for _, id := range h.Identity {
			Expand(id.Value, "u", "h")
		}
	})
}
