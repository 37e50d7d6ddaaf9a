// Package migrate owns the migrate node: it applies a directory of
// migrations in golang-migrate's layout (VERSION_name.up.sql / .down.sql)
// and records the version in golang-migrate's schema_migrations table
// (version bigint, dirty boolean), so users can move between the two tools.
// On PostgreSQL each migration runs in a transaction of its own; MySQL and
// MariaDB commit DDL implicitly, so there a failed migration leaves the
// version dirty, as golang-migrate does. Undo runs the down files newest
// first back to the version the run started from.
//
// It imports only modules, modules/dbconn and lang/diags.
package migrate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
)

// Migrate is the migrate node kind.
type Migrate struct{}

var (
	_ modules.Node       = (*Migrate)(nil)
	_ modules.Validator  = (*Migrate)(nil)
	_ modules.Undoer     = (*Migrate)(nil)
	_ modules.Changes    = (*Migrate)(nil)
	_ modules.Repeatable = (*Migrate)(nil)
	_ modules.Describer  = (*Migrate)(nil)
)

// Safe: a migration in flight when upgrader died was rolled back
// (PostgreSQL) or left the version dirty (MySQL), which Apply refuses with
// the repair to make; either way running Apply again does no harm.
func (*Migrate) Safe(*modules.Config) bool { return true }

// New returns the migrate module.
func New() *Migrate { return &Migrate{} }

func (*Migrate) Kind() string { return "migrate" }

// Describe: the offline plan shows these arguments.
func (*Migrate) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"dir", "database"}}
}

func (*Migrate) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"database": &hcldec.AttrSpec{Name: "database", Type: cty.DynamicPseudoType, Required: true},
		"dir":      &hcldec.AttrSpec{Name: "dir", Type: cty.String, Required: true},
	}
}

// Outputs: versions before and after (0 when none was recorded).
func (*Migrate) Outputs() map[string]cty.Type {
	return map[string]cty.Type{"from": cty.Number, "to": cty.Number}
}

// Changes: the database it migrates, for the backup interlock.
func (*Migrate) Changes(cfg *modules.Config) (hosts, databases []string) {
	if n := modules.RefName(modules.Get(cfg.Value, "database")); n != "" {
		return nil, []string{n}
	}
	return nil, nil
}

// noVersion is golang-migrate's NilVersion: nothing recorded yet.
const noVersion int64 = -1

type settings struct {
	database string
	dir      string // absolute or relative to the working directory
	dirAttr  string // as written
}

func parse(cfg *modules.Config) (settings, []Migration, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	v := cfg.Value
	s := settings{database: modules.RefName(modules.Get(v, "database")), dirAttr: modules.GetString(v, "dir")}
	if dv := modules.Get(v, "database"); dv.IsKnown() && !dv.IsNull() && s.database == "" {
		ds = append(ds, diags.At(*cfg.Range("database"), "Invalid database",
			"database must name a database block, like database.prod."))
	}
	if s.dirAttr == "" {
		return s, nil, ds
	}
	s.dir = s.dirAttr
	if !filepath.IsAbs(s.dir) && cfg.Dir != "" {
		s.dir = filepath.Join(cfg.Dir, s.dir)
	}
	migs, probs := ReadDir(s.dir)
	for _, p := range probs {
		detail := p.Detail
		if p.File != "" {
			detail = fmt.Sprintf("In %s: %s", filepath.Join(s.dirAttr, p.File), p.Detail)
		}
		ds = append(ds, diags.At(*cfg.Range("dir"), p.Summary, detail))
	}
	return s, migs, ds
}

func (*Migrate) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, _, ds := parse(cfg)
	return ds
}

// state is what Undo needs: where the run started.
type state struct {
	From int64 `json:"from"` // -1: nothing recorded
}

func versionVal(v int64) cty.Value {
	if v < 0 {
		return cty.NumberIntVal(0)
	}
	return cty.NumberIntVal(v)
}

func pending(migs []Migration, current int64) []Migration {
	var out []Migration
	for _, m := range migs {
		if int64(m.Version) > current {
			out = append(out, m)
		}
	}
	return out
}

func (*Migrate) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	s, migs, ds := parse(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	if s.database == "" || s.dir == "" {
		return &modules.Plan{Change: modules.Update, Summary: "migrate (database or dir known after apply)"}, nil
	}
	db, err := dbconn.Open(ctx, req.Env, s.database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	cur, dirty, err := readVersion(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(s, migs, cur, dirty); err != nil {
		return nil, err
	}
	todo := pending(migs, cur)
	p := &modules.Plan{
		Facts:   map[string]string{"migration version database." + s.database: strconv.FormatInt(cur, 10)},
		Outputs: map[string]cty.Value{"from": versionVal(cur)},
	}
	if db.Driver == "mysql" {
		p.Warnings = append(p.Warnings, "MySQL/MariaDB migrations are not transactional: a migration that fails halfway leaves its earlier statements applied and the version dirty")
	}
	if len(todo) == 0 {
		p.Change, p.Reason = modules.NoOp, fmt.Sprintf("database.%s is at version %s, the newest in %s", s.database, showVersion(cur), s.dirAttr)
		p.Summary = "no pending migrations"
		p.Outputs["to"] = versionVal(cur)
		return p, nil
	}
	last := int64(todo[len(todo)-1].Version)
	p.Change = modules.Update
	p.Outputs["to"] = versionVal(last)
	p.Summary = fmt.Sprintf("database.%s: %d pending (version %s -> %d)", s.database, len(todo), showVersion(cur), last)
	var b strings.Builder
	for _, m := range todo {
		fmt.Fprintf(&b, "+ %s\n", m.Up)
	}
	p.Detail = b.String()
	p.Undo = fmt.Sprintf("down files newest first, back to version %s", showVersion(cur))
	return p, nil
}

func showVersion(v int64) string {
	if v < 0 {
		return "none"
	}
	return strconv.FormatInt(v, 10)
}

// checkVersion refuses a dirty database and one whose version is not in the directory.
func checkVersion(s settings, migs []Migration, cur int64, dirty bool) error {
	if dirty {
		return fmt.Errorf("database %q: schema_migrations says version %d is dirty (a migration failed halfway); repair the schema by hand, then record the right version (golang-migrate's `force`)", s.database, cur)
	}
	if cur < 0 {
		return nil
	}
	for _, m := range migs {
		if int64(m.Version) == cur {
			return nil
		}
	}
	return fmt.Errorf("database %q is at version %d, which %s does not hold: wrong directory, or a migration file was removed", s.database, cur, s.dirAttr)
}

func (m *Migrate) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	s, migs, ds := parse(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	db, err := dbconn.Open(ctx, req.Env, s.database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	cur, dirty, err := readVersion(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(s, migs, cur, dirty); err != nil {
		return nil, err
	}
	st, _ := json.Marshal(state{From: cur})
	if req.Record != nil {
		if err := req.Record(st); err != nil {
			return nil, err
		}
	}
	todo := pending(migs, cur)
	out := &modules.Outcome{Undo: st, Outputs: map[string]cty.Value{"from": versionVal(cur), "to": versionVal(cur)}}
	if len(todo) == 0 {
		out.Message = fmt.Sprintf("no pending migrations (version %s)", showVersion(cur))
		return out, nil
	}
	if err := ensureTable(ctx, db); err != nil {
		return nil, err
	}
	for _, mig := range todo {
		if req.Log != nil {
			fmt.Fprintf(req.Log, "migrate database.%s: %s\n", s.database, mig.Up)
		}
		if err := run(ctx, db, s, mig.Up, int64(mig.Version), req.Log); err != nil {
			return nil, err
		}
		out.Changed = true
		out.Outputs["to"] = versionVal(int64(mig.Version))
	}
	out.Message = fmt.Sprintf("applied %d migrations (version %s -> %d)", len(todo), showVersion(cur), todo[len(todo)-1].Version)
	return out, nil
}

// Undo runs the down files newest first, from the recorded version back to
// the one the run started from.
func (*Migrate) Undo(ctx context.Context, req *modules.Request, raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("migrate: bad undo state: %w", err)
	}
	s, migs, ds := parse(req.Config)
	if ds.HasErrors() {
		return diags.Err(ds)
	}
	db, err := dbconn.Open(ctx, req.Env, s.database)
	if err != nil {
		return err
	}
	defer db.Close()
	cur, dirty, err := readVersion(ctx, db)
	if err != nil {
		return err
	}
	if cur < 0 {
		return nil // nothing was applied
	}
	if dirty {
		return fmt.Errorf("database %q: version %d is dirty (a migration failed halfway on a non-transactional database): repair it by hand or restore a backup", s.database, cur)
	}
	for i := len(migs) - 1; i >= 0; i-- {
		mig := migs[i]
		v := int64(mig.Version)
		if v > cur || v <= st.From {
			continue
		}
		target := st.From
		if i > 0 && int64(migs[i-1].Version) > st.From {
			target = int64(migs[i-1].Version)
		}
		if req.Log != nil {
			fmt.Fprintf(req.Log, "undo migrate database.%s: %s\n", s.database, mig.Down)
		}
		if err := run(ctx, db, s, mig.Down, target, req.Log); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// schema_migrations, as golang-migrate keeps it: one row, or none.

func ensureTable(ctx context.Context, db *dbconn.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`)
	if err != nil {
		return db.Explain(fmt.Errorf("creating schema_migrations: %w", err))
	}
	return nil
}

func readVersion(ctx context.Context, db *dbconn.DB) (int64, bool, error) {
	var exists bool
	var q string
	if db.Driver == "postgres" {
		q = `SELECT to_regclass('schema_migrations') IS NOT NULL`
	} else {
		q = `SELECT COUNT(*) > 0 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'`
	}
	if err := db.QueryRowContext(ctx, q).Scan(&exists); err != nil {
		return 0, false, db.Explain(fmt.Errorf("reading schema_migrations: %w", err))
	}
	if !exists {
		return noVersion, false, nil
	}
	var v int64
	var dirty bool
	err := db.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return noVersion, false, nil
	}
	if err != nil {
		return 0, false, db.Explain(fmt.Errorf("reading schema_migrations: %w", err))
	}
	return v, dirty, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func setVersion(ctx context.Context, x execer, driver string, v int64, dirty bool) error {
	if _, err := x.ExecContext(ctx, `DELETE FROM schema_migrations`); err != nil {
		return err
	}
	if v < 0 {
		return nil
	}
	q := `INSERT INTO schema_migrations (version, dirty) VALUES ($1, $2)`
	if driver == "mysql" {
		q = `INSERT INTO schema_migrations (version, dirty) VALUES (?, ?)`
	}
	_, err := x.ExecContext(ctx, q, v, dirty)
	return err
}

// run executes one migration file and records version v afterwards. On
// PostgreSQL file and version change commit together or not at all.
func run(ctx context.Context, db *dbconn.DB, s settings, file string, v int64, log io.Writer) error {
	src, err := readFile(s.dir, file)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	stmts := Split(src, db.Driver)
	rel := filepath.Join(s.dirAttr, file)
	if db.Driver == "postgres" {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return db.Explain(err)
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		for _, st := range stmts {
			if transactionControl(st.SQL) {
				// Each migration already runs in a transaction of ours.
				if log != nil {
					fmt.Fprintf(log, "%s:%d: %s skipped (the migration runs in a transaction)\n", rel, st.Line, st.SQL)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, st.SQL); err != nil {
				return failure(s, db, filepath.Join(s.dir, file), rel, st, err, true)
			}
		}
		if err := setVersion(ctx, tx, db.Driver, v, false); err != nil {
			return db.Explain(fmt.Errorf("recording version %d: %w", v, err))
		}
		if err := tx.Commit(); err != nil {
			return db.Explain(fmt.Errorf("committing %s: %w", rel, err))
		}
		return nil
	}
	// MySQL: golang-migrate's protocol: dirty first, clean after.
	if err := setVersion(ctx, db, db.Driver, v, true); err != nil {
		return db.Explain(fmt.Errorf("recording version %d: %w", v, err))
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st.SQL); err != nil {
			return failure(s, db, filepath.Join(s.dir, file), rel, st, err, false)
		}
	}
	if err := setVersion(ctx, db, db.Driver, v, false); err != nil {
		return db.Explain(fmt.Errorf("recording version %d: %w", v, err))
	}
	return nil
}

var mysqlLineRE = regexp.MustCompile(`at line ([0-9]+)\s*$`)

// failure reports a failed statement at its FILE:LINE (the server's error
// position mapped to a line of the file).
func failure(s settings, db *dbconn.DB, path, rel string, st Statement, err error, rolledBack bool) error {
	line, col := st.Line, 1
	msg := err.Error()
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &pgErr):
		msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", pgErr.Severity, pgErr.Message, pgErr.Code)
		if pgErr.Position > 0 {
			line = st.lineOf(int(pgErr.Position))
			col = colOf(st, int(pgErr.Position))
		}
	case errors.As(err, &myErr):
		msg = fmt.Sprintf("Error %d: %s", myErr.Number, myErr.Message)
		if m := mysqlLineRE.FindStringSubmatch(myErr.Message); m != nil {
			n, _ := strconv.Atoi(m[1])
			line = st.Line + n - 1
		}
	default:
		return db.Explain(fmt.Errorf("%s:%d: %w", rel, st.Line, err))
	}
	var after string
	if rolledBack {
		after = "The migration was rolled back: the database is as it was before this file."
	} else {
		after = fmt.Sprintf("MySQL/MariaDB do not roll back DDL: statements before line %d were applied, and schema_migrations is left dirty.", st.Line)
	}
	rng := hcl.Range{Filename: path, Start: hcl.Pos{Line: line, Column: col, Byte: 0}, End: hcl.Pos{Line: line, Column: col + 1}}
	return diags.Err(hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Migration %s failed at line %d on database %q", rel, line, s.database),
		Detail:   fmt.Sprintf("%s:%d: %s\n%s", rel, line, msg, after),
		Subject:  &rng,
	}})
}

// colOf is the 1-based column of a character position inside a statement.
func colOf(st Statement, pos int) int {
	r := []rune(st.SQL)
	if pos < 1 || pos > len(r)+1 {
		return 1
	}
	before := string(r[:pos-1])
	if i := strings.LastIndex(before, "\n"); i >= 0 {
		before = before[i+1:]
	}
	return len([]rune(before)) + 1
}
