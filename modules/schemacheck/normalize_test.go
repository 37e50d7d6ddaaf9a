package schemacheck

import (
	"os"
	"strings"
	"testing"
)

func TestNormType_spellings(t *testing.T) {
	b, err := os.ReadFile("testdata/types.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, want := strings.TrimSpace(line[:34]), strings.TrimSpace(line[34:])
		if got := normType(in); got != want {
			t.Errorf("normType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormDefault(t *testing.T) {
	for _, c := range []struct{ driver, in, want string }{
		{"postgres", "'new'::character varying", "'new'"},
		{"postgres", "nextval('users_id_seq'::regclass)", "nextval('users_id_seq')"},
		{"postgres", "now()", "current_timestamp"},
		{"postgres", "CURRENT_TIMESTAMP", "current_timestamp"},
		{"postgres", "(-1)", "-1"},
		{"mysql", "current_timestamp()", "current_timestamp"},
		{"mysql", "new", "'new'"},   // MySQL 8 spelling
		{"mysql", "'new'", "'new'"}, // MariaDB spelling
		{"mysql", "NULL", ""},
		{"mysql", "0", "0"},
	} {
		if got := normDefault(c.driver, c.in, false); got != c.want {
			t.Errorf("normDefault(%s, %q) = %q, want %q", c.driver, c.in, got, c.want)
		}
	}
}

func FuzzNormType(f *testing.F) {
	f.Add("character varying(10)")
	f.Add("int(11) unsigned zerofill")
	f.Fuzz(func(t *testing.T, s string) {
		_ = normType(s)
		_ = normDefault("postgres", s, false)
		_ = normDefault("mysql", s, false)
	})
}
