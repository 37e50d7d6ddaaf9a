package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func post(t *testing.T, h http.Handler, name string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "/items", strings.NewReader(url.Values{"name": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func migration(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../migrations/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApp_schemaCompatibility is the example's schema story on a real
// PostgreSQL: v1 keeps working on v2's schema (so production can be migrated
// before the standby is upgraded), and a v2 schema whose new column has no
// default breaks v1's writes while v2 works (what step 3.1 must catch).
func TestApp_schemaCompatibility(t *testing.T) {
	pg := testdb.Postgres(t)
	name := testdb.UniqueName("items")
	dsn := pg.CreateDatabase(name)
	pg.Exec(name, migration(t, "0001_init.up.sql"))

	// The build variables are global: set the version right before each use.
	as := func(v string) http.Handler {
		setBuild(t, v, "", "15s")
		return newApp(settings{DSN: dsn}, io.Discard).handler()
	}

	if code, body := get(t, as("1.0.0"), "/items"); code != 200 || !strings.Contains(body, `"name":"apples"`) {
		t.Fatalf("v1 on schema 1: /items = %d %s", code, body)
	}
	if code, body := post(t, as("1.0.0"), "figs"); code != 201 {
		t.Fatalf("v1 on schema 1: POST /items = %d %s", code, body)
	}
	if code, body := get(t, as("2.0.0"), "/items"); code != 500 || !strings.Contains(body, "stock") {
		t.Fatalf("v2 on schema 1 must fail on the missing column: %d %s", code, body)
	}

	pg.Exec(name, migration(t, "0002_add_stock.up.sql"))
	if code, body := post(t, as("1.0.0"), "kiwis"); code != 201 {
		t.Fatalf("v1 on schema 2: POST /items = %d %s", code, body)
	}
	if code, body := get(t, as("1.0.0"), "/admin"); code != 200 || !strings.Contains(body, "items in database: 5") {
		t.Fatalf("v1 on schema 2: /admin = %d %s", code, body)
	}
	if code, body := get(t, as("2.0.0"), "/items"); code != 200 || !strings.Contains(body, `"stock":0`) {
		t.Fatalf("v2 on schema 2: /items = %d %s", code, body)
	}

	// The incompatible variant: stock without a default.
	pg.Exec(name, "ALTER TABLE items ALTER COLUMN stock DROP DEFAULT")
	if code, body := post(t, as("1.0.0"), "limes"); code != 500 || !strings.Contains(body, "stock") {
		t.Fatalf("v1 must fail to write when stock has no default: %d %s", code, body)
	}
	if code, body := post(t, as("2.0.0"), "limes"); code != 201 {
		t.Fatalf("v2 writes stock itself: %d %s", code, body)
	}

	pg.Exec(name, migration(t, "0002_add_stock.down.sql"))
	pg.Exec(name, migration(t, "0001_init.down.sql"))
}
