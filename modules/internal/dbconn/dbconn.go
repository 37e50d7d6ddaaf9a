// Package dbconn opens connections to the databases of `database` blocks for
// the database modules (schema_check, migrate, the sql check): pgx for
// postgres, go-sql-driver/mysql for mysql (MySQL and MariaDB), both dialing
// through modules.Env.DialDatabase so that a database with a `host` is
// reached through an SSH tunnel from that host.
//
// Errors name the database block and never contain the DSN (it may hold a
// password). It imports only modules.
package dbconn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/upgrader-dev/upgrader/modules"
)

// DB is an open database block.
type DB struct {
	*sql.DB
	Name   string // the database block's name
	Driver string // "postgres" or "mysql"
	// Database is the database (schema) name the DSN selects.
	Database string
}

// Dialer is the shape of modules.Env.DialDatabase's result.
type Dialer = func(ctx context.Context, network, addr string) (net.Conn, error)

// PingTimeout bounds the first connection attempt.
var PingTimeout = 15 * time.Second

// Open opens the database block name and checks that it answers. The caller
// closes the DB.
func Open(ctx context.Context, env modules.Env, name string) (*DB, error) {
	if name == "" {
		return nil, errors.New("no database given")
	}
	d, err := env.Database(name)
	if err != nil {
		return nil, fmt.Errorf("database %q: %w", name, err)
	}
	dial, err := env.DialDatabase(name)
	if err != nil {
		return nil, fmt.Errorf("database %q: %w", name, err)
	}
	db, err := OpenWith(d, dial)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, db.Explain(err)
	}
	return db, nil
}

// OpenWith opens d with dial without connecting yet.
func OpenWith(d *modules.Database, dial Dialer) (*DB, error) {
	switch d.Driver {
	case "postgres":
		cfg, err := pgx.ParseConfig(d.DSN)
		if err != nil {
			return nil, fmt.Errorf("database %q: the dsn does not parse as a PostgreSQL connection string: %s", d.Name, redact(err.Error(), d.DSN))
		}
		cfg.DialFunc = pgconn.DialFunc(dial)
		if d.Host != "" {
			// Through a tunnel the name is resolved on the far side, not here.
			cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = PingTimeout
		}
		return &DB{DB: stdlib.OpenDB(*cfg), Name: d.Name, Driver: d.Driver, Database: cfg.Database}, nil
	case "mysql":
		cfg, err := mysql.ParseDSN(d.DSN)
		if err != nil {
			return nil, fmt.Errorf("database %q: the dsn does not parse as a MySQL DSN (user:password@tcp(host:port)/dbname): %s", d.Name, redact(err.Error(), d.DSN))
		}
		cfg.DialFunc = dial
		// Migrations are files of many statements.
		cfg.MultiStatements = true
		if cfg.Timeout == 0 {
			cfg.Timeout = PingTimeout
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("database %q: %s", d.Name, redact(err.Error(), d.DSN))
		}
		return &DB{DB: sql.OpenDB(conn), Name: d.Name, Driver: d.Driver, Database: cfg.DBName}, nil
	case "":
		return nil, fmt.Errorf("database %q: no driver set", d.Name)
	default:
		return nil, fmt.Errorf("database %q: unknown driver %q (postgres or mysql)", d.Name, d.Driver)
	}
}

// Explain turns a driver error into one that names the database block and
// says what kind of failure it is (refused login, unknown database, down).
func (db *DB) Explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("database %q: %w", db.Name, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("database %q: login refused (wrong user or password): %s", db.Name, pgErr.Message)
		case "3D000":
			return fmt.Errorf("database %q: %s", db.Name, pgErr.Message)
		}
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1045, 1044, 1698:
			return fmt.Errorf("database %q: login refused (wrong user or password): %s", db.Name, myErr.Message)
		case 1049:
			return fmt.Errorf("database %q: %s", db.Name, myErr.Message)
		}
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "failed to connect") {
		return fmt.Errorf("database %q is not reachable (down, or wrong host/port?): %s", db.Name, lastPart(err))
	}
	return fmt.Errorf("database %q: %s", db.Name, err.Error())
}

// lastPart keeps the cause of a long pgx connect error ("failed to connect
// to `user=... database=...`: dial error: ... connection refused").
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": dial error: "); i >= 0 {
		return s[i+2:]
	}
	if i := strings.Index(s, "`: "); i >= 0 {
		return s[i+3:]
	}
	return s
}

// redact removes the DSN and anything that looks like its password from msg.
func redact(msg, dsn string) string {
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "(dsn)")
	}
	if pw := password(dsn); len(pw) >= 3 {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

// password extracts user:PASSWORD@ from a URL or mysql DSN, "" when none.
func password(dsn string) string {
	s := dsn
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	at := strings.LastIndex(s, "@")
	if at < 0 {
		if i := strings.Index(dsn, "password="); i >= 0 {
			p := dsn[i+len("password="):]
			if j := strings.IndexAny(p, " &"); j >= 0 {
				p = p[:j]
			}
			return p
		}
		return ""
	}
	s = s[:at]
	if i := strings.Index(s, ":"); i >= 0 {
		return s[i+1:]
	}
	return ""
}
