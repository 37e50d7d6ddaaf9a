package dbconn_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func open(t *testing.T, driver, dsn string) (*dbconn.DB, error) {
	t.Helper()
	env := &modtest.Env{Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: driver, DSN: dsn},
	}}
	db, err := dbconn.Open(context.Background(), env, "prod")
	if db != nil {
		t.Cleanup(func() { db.Close() })
	}
	return db, err
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

func TestOpen_errorsNameTheBlock(t *testing.T) {
	pg := testdb.Postgres(t)
	my := testdb.MariaDB(t)
	pg.CreateDatabase("conn")
	my.CreateDatabase("conn")
	down := closedPort(t)
	cases := []struct {
		name, driver, dsn string
		want              []string
		secret            string
	}{
		{"pg bad dsn", "postgres", "postgres://u:s3cretpw@127.0.0.1:notaport/db", []string{`database "prod": the dsn does not parse`}, "s3cretpw"},
		{"my bad dsn", "mysql", "u:s3cretpw@tcp(127.0.0.1:3306/db", []string{`database "prod": the dsn does not parse`}, "s3cretpw"},
		{"pg wrong password", "postgres", strings.Replace(pg.DSN("conn"), pg.Password, "wrongpw", 1), []string{`database "prod": login refused (wrong user or password)`}, "wrongpw"},
		{"my wrong password", "mysql", strings.Replace(my.DSN("conn"), my.Password, "wrongpw", 1), []string{`database "prod": login refused (wrong user or password)`}, "wrongpw"},
		{"pg down", "postgres", "postgres://u:p@127.0.0.1:" + down + "/db", []string{`database "prod" is not reachable`, "connection refused"}, ""},
		{"my down", "mysql", "u:p@tcp(127.0.0.1:" + down + ")/db", []string{`database "prod" is not reachable`, "connection refused"}, ""},
		{"pg no such database", "postgres", pg.DSN("nosuchdb"), []string{`database "prod": database "nosuchdb" does not exist`}, ""},
		{"my no such database", "mysql", my.DSN("nosuchdb"), []string{`database "prod": Unknown database 'nosuchdb'`}, ""},
		{"unknown driver", "oracle", "x", []string{`database "prod": unknown driver "oracle"`}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := open(t, c.driver, c.dsn)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			t.Log(err)
			if c.secret != "" && strings.Contains(err.Error(), c.secret) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

func TestOpen_connects(t *testing.T) {
	for _, in := range []*testdb.Instance{testdb.Postgres(t), testdb.MariaDB(t)} {
		in.CreateDatabase("ok")
		db, err := open(t, in.Driver, in.DSN("ok"))
		if err != nil {
			t.Fatalf("%s: %v", in.Driver, err)
		}
		if db.Database != "ok" {
			t.Errorf("%s: Database = %q, want ok", in.Driver, db.Database)
		}
		var n int
		if err := db.QueryRow("SELECT 1 + 1").Scan(&n); err != nil || n != 2 {
			t.Errorf("%s: SELECT 1+1 = %d, %v", in.Driver, n, err)
		}
	}
}
