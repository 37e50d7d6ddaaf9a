package migrate

import (
	"reflect"
	"testing"
)

func TestSplit_linesAndQuotes(t *testing.T) {
	src := "-- header\nCREATE TABLE a (x text DEFAULT 'a;b');\n\n/* multi\nline; */ INSERT INTO a VALUES ($$x;y$$);\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n-- only a comment;\n"
	got := Split(src, "postgres")
	want := []Statement{
		{"CREATE TABLE a (x text DEFAULT 'a;b')", 2},
		{"INSERT INTO a VALUES ($$x;y$$)", 5},
		{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql", 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	my := Split("# c\nINSERT INTO t VALUES ('it\\'s; ok', `a;b`);\nSELECT 2", "mysql")
	wantMy := []Statement{{"INSERT INTO t VALUES ('it\\'s; ok', `a;b`)", 2}, {"SELECT 2", 3}}
	if !reflect.DeepEqual(my, wantMy) {
		t.Fatalf("mysql: got %#v", my)
	}
	if s := (Statement{SQL: "CREATE INDEX i\n  ON t (c)", Line: 7}); s.lineOf(20) != 8 {
		t.Errorf("lineOf = %d, want 8", s.lineOf(20))
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("SELECT 1; SELECT 'a;b'; $$x$$; /* ; */ -- ;\n", "postgres")
	f.Add("SELECT `a;`; # x\n SELECT '\\'';", "mysql")
	f.Fuzz(func(t *testing.T, src, driver string) {
		for _, s := range Split(src, driver) {
			if s.Line < 1 || s.SQL == "" {
				t.Fatalf("bad statement %#v", s)
			}
		}
	})
}
