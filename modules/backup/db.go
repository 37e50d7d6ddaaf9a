package backup

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/upgrader-dev/upgrader/modules"
)

// dbCommand is a database client command line and the password it needs.
// The password never appears on a command line or in the SSH environment:
// the script reads it from the first line of stdin into PGPASSWORD or
// MYSQL_PWD, and the dump or restore data (if any) follows.
type dbCommand struct {
	script   string
	password string
}

// stdinPrefix is what must be sent before any data on stdin.
func (c dbCommand) stdinPrefix() string {
	if c.password == "" {
		return ""
	}
	return c.password + "\n"
}

// dbConn is a DSN split into what the client tools take.
type dbConn struct {
	driver   string
	password string
	// postgres: the DSN without its password, for --dbname.
	pgDSN string
	// mysql: connection arguments, already quoted, and the database.
	myArgs []string
	myDB   string
}

func parseDB(db *modules.Database) (*dbConn, error) {
	switch db.Driver {
	case "postgres":
		dsn, pw, err := pgStripPassword(db.DSN)
		if err != nil {
			return nil, fmt.Errorf("database %q: %w", db.Name, err)
		}
		return &dbConn{driver: "postgres", pgDSN: dsn, password: pw}, checkPassword(db.Name, pw)
	case "mysql":
		cfg, err := mysql.ParseDSN(db.DSN)
		if err != nil {
			// The driver's message can quote the DSN: do not repeat it.
			return nil, fmt.Errorf("database %q: the dsn is not a MySQL DSN (user:password@tcp(host:port)/db)", db.Name)
		}
		if cfg.DBName == "" || strings.HasPrefix(cfg.DBName, "-") {
			return nil, fmt.Errorf("database %q: the dsn names no database", db.Name)
		}
		c := &dbConn{driver: "mysql", password: cfg.Passwd, myDB: cfg.DBName}
		switch cfg.Net {
		case "unix":
			c.myArgs = append(c.myArgs, "--protocol=socket", "--socket="+modules.ShellQuote(cfg.Addr))
		default:
			host, port, err := net.SplitHostPort(cfg.Addr)
			if err != nil {
				host, port = cfg.Addr, "3306"
			}
			c.myArgs = append(c.myArgs, "--protocol=tcp", "--host="+modules.ShellQuote(host), "--port="+modules.ShellQuote(port))
		}
		if cfg.User != "" {
			c.myArgs = append(c.myArgs, "--user="+modules.ShellQuote(cfg.User))
		}
		return c, checkPassword(db.Name, c.password)
	default:
		return nil, fmt.Errorf("database %q: driver %q has no backup (postgres or mysql)", db.Name, db.Driver)
	}
}

func checkPassword(name, pw string) error {
	if strings.ContainsAny(pw, "\n\r\x00") {
		return fmt.Errorf("database %q: a password with a line break cannot be passed to the client tools", name)
	}
	return nil
}

func (c *dbConn) withPassword(script string) dbCommand {
	if c.password == "" {
		return dbCommand{script: script}
	}
	v := "PGPASSWORD"
	if c.driver == "mysql" {
		v = "MYSQL_PWD"
	}
	return dbCommand{script: "IFS= read -r " + v + " || exit 100\nexport " + v + "\n" + script, password: c.password}
}

func (c *dbConn) mysql(tool string, extra ...string) string {
	args := append([]string{"exec", tool}, c.myArgs...)
	args = append(args, extra...)
	return strings.Join(append(args, modules.ShellQuote(c.myDB)), " ")
}

// dump streams the database to stdout. pg_dump's own compression is off:
// the controller compresses with zstd.
func (c *dbConn) dump() dbCommand {
	if c.driver == "postgres" {
		return c.withPassword("exec pg_dump --format=custom --compress=0 --no-password --dbname=" + modules.ShellQuote(c.pgDSN))
	}
	return c.withPassword(c.mysql("mysqldump", "--single-transaction", "--routines", "--triggers",
		"--hex-blob", "--default-character-set=utf8mb4"))
}

// restore reads a dump from stdin into the database.
func (c *dbConn) restore() dbCommand {
	if c.driver == "postgres" {
		return c.withPassword("exec pg_restore --clean --if-exists --single-transaction --no-password --dbname=" + modules.ShellQuote(c.pgDSN))
	}
	return c.withPassword(c.mysql("mysql", "--default-character-set=utf8mb4", "--batch"))
}

// size prints the database's size in bytes (an estimate of the dump).
func (c *dbConn) size() dbCommand {
	if c.driver == "postgres" {
		return c.withPassword("exec psql -X -A -t -w -c 'select pg_database_size(current_database())' --dbname=" + modules.ShellQuote(c.pgDSN))
	}
	return c.withPassword(c.mysql("mysql", "--batch", "--skip-column-names", "-e",
		modules.ShellQuote("select coalesce(sum(data_length+index_length),0) from information_schema.tables where table_schema=database()")))
}

// pgStripPassword returns a libpq connection string (URL or key=value) with
// its password removed, and the password.
func pgStripPassword(dsn string) (string, string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("the dsn is not a valid postgres:// URL")
		}
		var pw string
		if u.User != nil {
			pw, _ = u.User.Password()
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if p := q.Get("password"); p != "" {
			pw = p
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), pw, nil
	}
	kvs, err := parseKV(dsn)
	if err != nil {
		return "", "", err
	}
	var pw string
	var parts []string
	for _, kv := range kvs {
		if kv[0] == "password" {
			pw = kv[1]
			continue
		}
		parts = append(parts, kv[0]+"="+kvQuote(kv[1]))
	}
	return strings.Join(parts, " "), pw, nil
}

// parseKV parses libpq's "key=value key='quoted value'" form.
func parseKV(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' || key == "" {
			return nil, fmt.Errorf("the dsn is neither a postgres:// URL nor key=value pairs")
		}
		i++
		skip()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					i++
					closed = true
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("the dsn has an unterminated quoted value")
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out = append(out, [2]string{key, val.String()})
	}
}

// isSpace is libpq's isspace: what separates key=value pairs.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func kvQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
