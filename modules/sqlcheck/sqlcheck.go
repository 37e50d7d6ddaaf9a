// Package sqlcheck owns the `sql` probe of a check block: it runs a query
// on a database block and compares the answer with `expect`:
//
//	= value | != value | > n | >= n | < n | <= n   the first column of the first row
//	rows = n | rows > n | ...                      the number of rows
//
// It imports only modules, modules/dbconn and lang/diags.
package sqlcheck

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
)

// SQL is the sql probe kind.
type SQL struct{}

var (
	_ modules.Probe     = (*SQL)(nil)
	_ modules.Validator = (*SQL)(nil)
	_ modules.Describer = (*SQL)(nil)
)

// New returns the sql probe.
func New() *SQL { return &SQL{} }

func (*SQL) Kind() string { return "sql" }

// Describe: the offline plan shows these arguments.
func (*SQL) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"query", "database"}}
}

func (*SQL) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"database": &hcldec.AttrSpec{Name: "database", Type: cty.DynamicPseudoType, Required: true},
		"query":    &hcldec.AttrSpec{Name: "query", Type: cty.String, Required: true},
		"expect":   &hcldec.AttrSpec{Name: "expect", Type: cty.String, Required: true},
	}
}

// Expect is a parsed expect string.
type Expect struct {
	Rows  bool   // compare the row count, not a value
	Op    string // = != > >= < <=
	Value string
	num   float64
	isNum bool
}

var expectRE = regexp.MustCompile(`^\s*(rows\s*)?(=|==|!=|<>|>=|<=|>|<)\s*(.*?)\s*$`)

// ParseExpect parses "= value", "> n", "rows = n", ...
func ParseExpect(s string) (Expect, error) {
	m := expectRE.FindStringSubmatch(s)
	if m == nil {
		return Expect{}, fmt.Errorf("expect %q: write an operator and a value: \"= value\", \"!= value\", \"> n\", \">= n\", \"< n\", \"<= n\" or \"rows = n\"", s)
	}
	e := Expect{Rows: m[1] != "", Op: m[2], Value: m[3]}
	switch e.Op {
	case "==":
		e.Op = "="
	case "<>":
		e.Op = "!="
	}
	if len(e.Value) >= 2 && (e.Value[0] == '\'' || e.Value[0] == '"') && e.Value[len(e.Value)-1] == e.Value[0] {
		e.Value = e.Value[1 : len(e.Value)-1] // = 'ok' compares with ok
	}
	if f, err := strconv.ParseFloat(e.Value, 64); err == nil {
		e.num, e.isNum = f, true
	}
	if e.Rows && !e.isNum {
		return Expect{}, fmt.Errorf("expect %q: rows must be compared with a number", s)
	}
	if strings.ContainsAny(e.Op, "<>") && !e.isNum {
		return Expect{}, fmt.Errorf("expect %q: %s needs a number, not %q", s, e.Op, e.Value)
	}
	return e, nil
}

func (e Expect) String() string {
	if e.Rows {
		return "rows " + e.Op + " " + e.Value
	}
	return e.Op + " " + e.Value
}

// Match compares got with the expectation.
func (e Expect) Match(got string) bool {
	if e.isNum {
		if g, err := strconv.ParseFloat(strings.TrimSpace(got), 64); err == nil {
			switch e.Op {
			case "=":
				return g == e.num
			case "!=":
				return g != e.num
			case ">":
				return g > e.num
			case ">=":
				return g >= e.num
			case "<":
				return g < e.num
			case "<=":
				return g <= e.num
			}
		}
		if strings.ContainsAny(e.Op, "<>") {
			return false // not a number: cannot be greater or smaller
		}
	}
	if e.Op == "!=" {
		return got != e.Value
	}
	return got == e.Value
}

type settings struct {
	database, query string
	expect          Expect
}

func parse(cfg *modules.Config) (settings, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	v := cfg.Value
	s := settings{database: modules.RefName(modules.Get(v, "database")), query: modules.GetString(v, "query")}
	if dv := modules.Get(v, "database"); dv.IsKnown() && !dv.IsNull() && s.database == "" {
		ds = append(ds, diags.At(*cfg.Range("database"), "Invalid database", "database must name a database block, like database.prod."))
	}
	if q := modules.Get(v, "query"); q.IsKnown() && !q.IsNull() && strings.TrimSpace(s.query) == "" {
		ds = append(ds, diags.At(*cfg.Range("query"), "Empty query", "query must be an SQL statement returning rows."))
	}
	if ev := modules.Get(v, "expect"); ev.IsKnown() && !ev.IsNull() {
		e, err := ParseExpect(modules.GetString(v, "expect"))
		if err != nil {
			ds = append(ds, diags.At(*cfg.Range("expect"), "Invalid expect", err.Error()))
		}
		s.expect = e
	}
	return s, ds
}

func (*SQL) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, ds := parse(cfg)
	return ds
}

// Check runs the query and compares. Queries run read-only where the
// database allows it: a check must not change data.
func (*SQL) Check(ctx context.Context, req *modules.Request) error {
	s, ds := parse(req.Config)
	if ds.HasErrors() {
		return diags.Err(ds)
	}
	db, err := dbconn.Open(ctx, req.Env, s.database)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return db.Explain(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	rows, err := tx.QueryContext(ctx, s.query)
	if err != nil {
		return fmt.Errorf("sql check on database %q: query failed: %s", s.database, db.Explain(err).Error())
	}
	defer rows.Close()
	var first sql.NullString
	n, got := 0, ""
	for rows.Next() {
		if n == 0 {
			cols, err := rows.Columns()
			if err != nil {
				return err
			}
			dest := make([]any, len(cols))
			dest[0] = &first
			for i := 1; i < len(cols); i++ {
				dest[i] = new(sql.RawBytes)
			}
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("sql check on database %q: %w", s.database, err)
			}
			got = first.String
			if !first.Valid {
				got = "NULL"
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sql check on database %q: %s", s.database, db.Explain(err).Error())
	}
	if s.expect.Rows {
		if !s.expect.Match(strconv.Itoa(n)) {
			return fmt.Errorf("sql check on database %q: expected %s, got %d rows (%s)", s.database, s.expect, n, trim(s.query))
		}
		return nil
	}
	if n == 0 {
		return fmt.Errorf("sql check on database %q: expected %s, got no rows (%s)", s.database, s.expect, trim(s.query))
	}
	if !s.expect.Match(got) {
		return fmt.Errorf("sql check on database %q: expected %s, got %s (%s)", s.database, s.expect, trim(got), trim(s.query))
	}
	return nil
}

func trim(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
