package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testdb"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestPGStripPassword(t *testing.T) {
	for _, c := range []struct{ in, dsn, pw string }{
		{"postgres://app:s3cr%20t@db:5432/prod?sslmode=disable", "postgres://app@db:5432/prod?sslmode=disable", "s3cr t"},
		{"postgresql://app@db/prod?password=x&sslmode=require", "postgresql://app@db/prod?sslmode=require", "x"},
		{"host=db port=5432 user=app password='it''s' dbname=prod", "", ""}, // '' is not libpq quoting: see next
		{`host=db user=app password='it\'s a pw' dbname='my db'`, `host=db user=app dbname='my db'`, "it's a pw"},
		{"host=/var/run/postgresql dbname=prod", "host=/var/run/postgresql dbname=prod", ""},
	} {
		dsn, pw, err := pgStripPassword(c.in)
		if c.dsn == "" {
			if err == nil {
				t.Errorf("%q: no error (got %q %q)", c.in, dsn, pw)
			}
			continue
		}
		if err != nil || dsn != c.dsn || pw != c.pw {
			t.Errorf("%q: got %q %q %v, want %q %q", c.in, dsn, pw, err, c.dsn, c.pw)
		}
	}
}

// fixture creates two tables with rows (binary data included) and returns
// a fingerprint of the database: its tables and every row.
type dbFixture struct {
	in   *testdb.Instance
	name string
}

func newFixture(t *testing.T, in *testdb.Instance) (*dbFixture, string) {
	name := testdb.UniqueName("bk")
	dsn := in.CreateDatabase(name)
	f := &dbFixture{in: in, name: name}
	bin, blob, nl, opts := "decode('00ff10275c27', 'hex')", "bytea", `E'line\nbreak'`, ""
	if in.Driver == "mysql" {
		bin, blob, nl, opts = "unhex('00ff10275c27')", "blob", `'line\nbreak'`, " default charset=utf8mb4"
	}
	in.Exec(name, "create table users (id int primary key, name varchar(100), balance decimal(12,2), pic "+blob+")"+opts)
	in.Exec(name, "create table orders (id int primary key, user_id int references users(id), note text)"+opts)
	in.Exec(name, "insert into users values (1, 'ann', 10.50, "+bin+"), (2, 'bob ''the'' builder', 0, null), (3, 'żółw 🐢', -3.25, "+bin+")")
	in.Exec(name, "insert into orders values (10, 1, 'first'), (11, 1, "+nl+"), (12, 3, 'tab\there')")
	return f, dsn
}

func (f *dbFixture) fingerprint(t *testing.T) string {
	t.Helper()
	q := map[string]string{
		"tables": `select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'`,
		"users":  `select string_agg(concat_ws(',', id, name, balance, md5(pic)), '|' order by id) from users`,
		"orders": `select string_agg(concat_ws(',', id, user_id, note), '|' order by id) from orders`,
	}
	if f.in.Driver == "mysql" {
		q = map[string]string{
			"tables": `select group_concat(table_name order by table_name) from information_schema.tables where table_schema = database()`,
			"users":  `select group_concat(concat_ws(',', id, name, balance, md5(pic)) order by id separator '|') from users`,
			"orders": `select group_concat(concat_ws(',', id, user_id, note) order by id separator '|') from orders`,
		}
	}
	tables := f.in.QueryString(f.name, q["tables"])
	out := "tables: " + tables
	for _, tb := range strings.Split(tables, ",") {
		if q[tb] != "" {
			out += "\n" + tb + ": " + f.in.QueryString(f.name, q[tb])
		}
	}
	return out
}

// damage drops a table and changes rows.
func (f *dbFixture) damage(t *testing.T) {
	f.in.Exec(f.name, "drop table orders")
	f.in.Exec(f.name, "update users set name = 'changed', balance = 99 where id = 1")
	f.in.Exec(f.name, "insert into users values (4, 'new', 1, null)")
}

// dbRoundTrip dumps the database, damages it, restores it and compares.
func dbRoundTrip(t *testing.T, in *testdb.Instance, env *modtest.Env, f *dbFixture) {
	ctx := context.Background()
	before := f.fingerprint(t)
	if !strings.Contains(before, "orders") || !strings.Contains(before, "żółw") {
		t.Fatalf("fixture: %s", before)
	}
	b := &Backup{Version: "test"}
	var log bytes.Buffer
	req := &modules.Request{Config: decode(t, b, `backup { database = database.prod }`), Node: "backup.db", Index: -1, Env: env, Log: &log}
	p, err := b.Plan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) > 0 || !strings.Contains(p.Detail, "iB") {
		t.Errorf("plan did not measure the database: %+v", p)
	}
	out, err := b.Apply(ctx, req)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, log.String())
	}
	m, err := ReadManifest(Dir(env.Dir, env.ID, "db"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindDatabase || m.Database != "prod" || m.Driver != in.Driver || m.Archive != dbArchive || out.Outputs["database"].AsString() != "prod" {
		t.Errorf("manifest %+v", m)
	}
	// The password never reaches a command line or the archive's manifest.
	raw, _ := os.ReadFile(filepath.Join(Dir(env.Dir, env.ID, "db"), manifestName))
	if bytes.Contains(raw, []byte(in.Password)) || strings.Contains(log.String(), in.Password) {
		t.Errorf("the password leaked into the manifest or log")
	}
	f.damage(t)
	if f.fingerprint(t) == before {
		t.Fatal("damage changed nothing")
	}
	r := &Restore{}
	rreq := &modules.Request{Config: decode(t, r, `restore { backup = backup.db }`), Node: "step.x", Env: env, Log: &log}
	rp, err := r.Plan(ctx, rreq)
	if err != nil || !strings.Contains(rp.Summary, "database prod") {
		t.Errorf("restore plan: %+v %v", rp, err)
	}
	if _, err := r.Apply(ctx, rreq); err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	// The row inserted after the backup goes with the table's content:
	// the dump drops and recreates each table it holds.
	if got := f.fingerprint(t); got != before {
		t.Errorf("after restore:\n%s\nwant:\n%s", got, before)
	}
}

func TestBackup_postgresLocal(t *testing.T) {
	pg := testdb.Postgres(t)
	f, dsn := newFixture(t, pg)
	env := &modtest.Env{ID: "r1", Dir: t.TempDir(), Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: "postgres", DSN: dsn}}}
	dbRoundTrip(t, pg, env, f)
}

func TestBackup_mariadbLocal(t *testing.T) {
	my := testdb.MariaDB(t)
	f, dsn := newFixture(t, my)
	env := &modtest.Env{ID: "r1", Dir: t.TempDir(), Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: "mysql", DSN: dsn}}}
	dbRoundTrip(t, my, env, f)
}

// TestBackup_postgresOnHost runs pg_dump and pg_restore on a test host over
// SSH: the host reaches the server through a forwarder on the bridge.
func TestBackup_postgresOnHost(t *testing.T) {
	pg := testdb.Postgres(t)
	bed := testbed.New(t, "db")
	tg, err := bed.Target("db")
	if err != nil {
		t.Fatal(err)
	}
	f, dsn := newFixture(t, pg)
	dsn = exposeToHosts(t, dsn, pg.Port)
	env := &modtest.Env{ID: "r1", Dir: t.TempDir(), Targets: map[string]modules.Target{"db": tg},
		Databases: map[string]*modules.Database{"prod": {Name: "prod", Driver: "postgres", DSN: dsn, Host: "db"}}}
	dbRoundTrip(t, pg, env, f)
}

func TestBackup_mariadbOnHost(t *testing.T) {
	my := testdb.MariaDB(t)
	bed := testbed.New(t, "db")
	tg, err := bed.Target("db")
	if err != nil {
		t.Fatal(err)
	}
	f, dsn := newFixture(t, my)
	dsn = exposeToHosts(t, dsn, my.Port)
	env := &modtest.Env{ID: "r1", Dir: t.TempDir(), Targets: map[string]modules.Target{"db": tg},
		Databases: map[string]*modules.Database{"prod": {Name: "prod", Driver: "mysql", DSN: dsn, Host: "db"}}}
	dbRoundTrip(t, my, env, f)
}

// TestRestore_databaseCorrupt: a corrupted dump is refused before the
// database is touched.
func TestRestore_databaseCorrupt(t *testing.T) {
	pg := testdb.Postgres(t)
	f, dsn := newFixture(t, pg)
	env := &modtest.Env{ID: "r1", Dir: t.TempDir(), Databases: map[string]*modules.Database{
		"prod": {Name: "prod", Driver: "postgres", DSN: dsn}}}
	ctx := context.Background()
	b := &Backup{}
	if _, err := b.Apply(ctx, &modules.Request{Config: decode(t, b, `backup { database = database.prod }`), Node: "backup.db", Env: env, Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(Dir(env.Dir, "r1", "db"), dbArchive))
	f.damage(t)
	damaged := f.fingerprint(t)
	r := &Restore{}
	_, err := r.Apply(ctx, &modules.Request{Config: decode(t, r, `restore { backup = backup.db }`), Env: env, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "nothing was restored") {
		t.Errorf("restore of a corrupted dump: %v", err)
	}
	if got := f.fingerprint(t); got != damaged {
		t.Errorf("a refused restore changed the database:\n%s", got)
	}
}

// controllerAddr is the controller's address on the test hosts' bridge.
const controllerAddr = "198.51.100.254"

// exposeToHosts makes the test server at 127.0.0.1:port reachable from test
// hosts at controllerAddr:port (a forwarder on the bridge address) and
// returns the DSN as a host sees it.
func exposeToHosts(t *testing.T, dsn string, port int) string {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", controllerAddr, port))
	if err != nil {
		t.Fatalf("forwarder on %s: %v", controllerAddr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
	return strings.Replace(dsn, fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("%s:%d", controllerAddr, port), 1)
}

// FuzzPGStripPassword: no DSN panics the parser, and a stripped key=value
// DSN parses again to the same pairs without the password.
func FuzzPGStripPassword(f *testing.F) {
	f.Add("host=db user=app password='x y' dbname=prod")
	f.Add(`password=a\ b host='it\'s'`)
	f.Add("postgres://u:p@h/db?password=q")
	f.Fuzz(func(t *testing.T, dsn string) {
		out, pw, err := pgStripPassword(dsn)
		if err != nil || strings.HasPrefix(dsn, "postgres") {
			return
		}
		before, _ := parseKV(dsn)
		after, err := parseKV(out)
		if err != nil {
			t.Fatalf("%q stripped to %q, which does not parse: %v", dsn, out, err)
		}
		var want [][2]string
		for _, kv := range before {
			if kv[0] != "password" {
				want = append(want, kv)
			}
		}
		if fmt.Sprint(after) != fmt.Sprint(want) {
			t.Errorf("%q -> %q: pairs %v, want %v (password %q)", dsn, out, after, want, pw)
		}
	})
}

// TestDBCommands: the password goes to stdin only; the scripts name the
// right tools and connection; bad DSNs are errors that do not quote them.
func TestDBCommands(t *testing.T) {
	for _, c := range []struct {
		db      modules.Database
		dump    []string // substrings of the dump script
		restore []string
		err     string
	}{
		{db: modules.Database{Name: "p", Driver: "postgres", DSN: "postgres://app:pa'ss@db:5433/prod?sslmode=disable"},
			dump:    []string{"read -r PGPASSWORD", "pg_dump --format=custom --compress=0 --no-password --dbname='postgres://app@db:5433/prod?sslmode=disable'"},
			restore: []string{"pg_restore --clean --if-exists --single-transaction"}},
		{db: modules.Database{Name: "p", Driver: "postgres", DSN: "host=/run/postgresql dbname=prod"},
			dump: []string{"--dbname='host=/run/postgresql dbname=prod'"}},
		{db: modules.Database{Name: "m", Driver: "mysql", DSN: "root:pa'ss@tcp(127.0.0.1:3307)/shop?parseTime=true"},
			dump:    []string{"read -r MYSQL_PWD", "mysqldump --protocol=tcp --host='127.0.0.1' --port='3307' --user='root' --single-transaction --routines --triggers", "'shop'"},
			restore: []string{"exec mysql --protocol=tcp", "'shop'"}},
		{db: modules.Database{Name: "m", Driver: "mysql", DSN: "app@unix(/run/mysqld/mysqld.sock)/shop"},
			dump: []string{"--protocol=socket --socket='/run/mysqld/mysqld.sock'"}},
		{db: modules.Database{Name: "m", Driver: "mysql", DSN: "root:secret@tcp(db)/"}, err: `database "m": the dsn names no database`},
		{db: modules.Database{Name: "m", Driver: "mysql", DSN: "secret nonsense"}, err: "not a MySQL DSN"},
		{db: modules.Database{Name: "p", Driver: "postgres", DSN: "postgres://u:a%0Ab@h/db"}, err: "line break"},
		{db: modules.Database{Name: "x", Driver: "oracle", DSN: "x"}, err: `driver "oracle" has no backup`},
	} {
		conn, err := parseDB(&c.db)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: got %v, want %q", c.db.DSN, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.db.DSN, err)
		}
		d, r := conn.dump(), conn.restore()
		for _, s := range []dbCommand{d, r, conn.size()} {
			if strings.Contains(s.script, "pa'ss") || strings.Contains(s.script, `pa'\''ss`) {
				t.Errorf("%s: the password is on the command line: %s", c.db.DSN, s.script)
			}
			if conn.password != "" && s.stdinPrefix() != conn.password+"\n" {
				t.Errorf("%s: stdin prefix %q", c.db.DSN, s.stdinPrefix())
			}
		}
		for _, want := range c.dump {
			if !strings.Contains(d.script, want) {
				t.Errorf("%s: dump script lacks %q:\n%s", c.db.DSN, want, d.script)
			}
		}
		for _, want := range c.restore {
			if !strings.Contains(r.script, want) {
				t.Errorf("%s: restore script lacks %q:\n%s", c.db.DSN, want, r.script)
			}
		}
	}
}
