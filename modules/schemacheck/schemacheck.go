// Package schemacheck owns the schema_check node: it compares the schema of
// a database with a reference database (tables, columns with type,
// nullability, default and collation, primary keys, unique constraints,
// indexes, foreign keys, check constraints, triggers, views, enum types,
// sequences, functions and procedures), shows the difference as a readable
// per-table diff in plan and apply (and as objects in plan -json), and
// exports .matches and .diff so that `when` can branch on it. migrate's
// bookkeeping table is left out by default.
//
// The inspector and differ are our own (catalog queries, see inspect.go),
// not ariga.io/atlas: see docs/DESIGN.md for why. It imports only modules,
// modules/dbconn and lang/diags.
package schemacheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/dbconn"
)

// SchemaCheck is the schema_check node kind.
type SchemaCheck struct{}

var (
	_ modules.Node       = (*SchemaCheck)(nil)
	_ modules.Validator  = (*SchemaCheck)(nil)
	_ modules.Repeatable = (*SchemaCheck)(nil)
	_ modules.Describer  = (*SchemaCheck)(nil)
)

// New returns the schema_check module.
func New() *SchemaCheck { return &SchemaCheck{} }

func (*SchemaCheck) Kind() string { return "schema_check" }

// Describe: the offline plan shows these arguments; it only reads.
func (*SchemaCheck) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"database"}, Change: modules.Read}
}

func (*SchemaCheck) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"database":      &hcldec.AttrSpec{Name: "database", Type: cty.DynamicPseudoType, Required: true},
		"reference":     &hcldec.AttrSpec{Name: "reference", Type: cty.DynamicPseudoType, Required: true},
		"ignore":        &hcldec.AttrSpec{Name: "ignore", Type: cty.List(cty.String)},
		"on_mismatch":   &hcldec.AttrSpec{Name: "on_mismatch", Type: cty.String},
		"include_views": &hcldec.AttrSpec{Name: "include_views", Type: cty.Bool},
		// migrations_table is migrate's bookkeeping table, left out of the
		// comparison ("" compares it too).
		"migrations_table": &hcldec.AttrSpec{Name: "migrations_table", Type: cty.String},
	}
}

func (*SchemaCheck) Outputs() map[string]cty.Type {
	return map[string]cty.Type{"matches": cty.Bool, "diff": cty.String}
}

// Safe: it only reads.
func (*SchemaCheck) Safe(*modules.Config) bool { return true }

type settings struct {
	database, reference string
	ignore              []string
	fail                bool
	views               bool
	migrations          string // the bookkeeping table left out; "" none
}

func parse(cfg *modules.Config) (settings, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	v := cfg.Value
	s := settings{
		database:  modules.RefName(modules.Get(v, "database")),
		reference: modules.RefName(modules.Get(v, "reference")),
		ignore:    modules.GetStrings(v, "ignore"),
		fail:      true,
		views:     modules.GetBool(v, "include_views", true),
	}
	s.migrations = defaultMigrationsTable
	if mv := modules.Get(v, "migrations_table"); !mv.IsNull() {
		s.migrations = modules.GetString(v, "migrations_table")
	}
	for _, attr := range []string{"database", "reference"} {
		av := modules.Get(v, attr)
		if av.IsKnown() && !av.IsNull() && modules.RefName(av) == "" {
			ds = append(ds, diags.At(*cfg.Range(attr), "Invalid "+attr,
				fmt.Sprintf("%s must name a database block, like database.prod.", attr)))
		}
	}
	if s.database != "" && s.database == s.reference {
		ds = append(ds, diags.At(*cfg.Range("reference"), "Schema compared with itself",
			fmt.Sprintf("database and reference are both database.%s; reference should be another database (e.g. the test environment's).", s.database)))
	}
	switch m := modules.GetString(v, "on_mismatch"); m {
	case "", "fail":
	case "continue":
		s.fail = false
	default:
		ds = append(ds, diags.At(*cfg.Range("on_mismatch"), "Invalid on_mismatch",
			fmt.Sprintf("on_mismatch is %q; it must be \"fail\" (the default) or \"continue\".", m)))
	}
	for _, p := range s.ignore {
		if _, err := path.Match(p, ""); err != nil {
			ds = append(ds, diags.At(*cfg.Range("ignore"), "Invalid ignore pattern",
				fmt.Sprintf("%q is not a valid pattern (* and ? match within a name): %v", p, err)))
		}
	}
	return s, ds
}

func (*SchemaCheck) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, ds := parse(cfg)
	return ds
}

// defaultMigrationsTable is the table migrate (golang-migrate's layout)
// keeps its version in: right after migrate brought a database to the
// reference's schema, it is the one table only the database has.
const defaultMigrationsTable = "schema_migrations"

// result is one comparison.
type result struct {
	diffs           []Difference
	diff            string
	leftOut         string // the migrations table, when either database had it
	hashDB, hashRef string
	tablesDB        int
	dbName, refName string
}

// compare inspects both databases (in parallel) and diffs them.
func compare(ctx context.Context, env modules.Env, s settings) (*result, error) {
	type one struct {
		schema *Schema
		driver string
		err    error
	}
	inspect := func(name string, ch chan<- one) {
		db, err := dbconn.Open(ctx, env, name)
		if err != nil {
			ch <- one{err: err}
			return
		}
		defer db.Close()
		sc, err := Inspect(ctx, db, s.views)
		ch <- one{schema: sc, driver: db.Driver, err: err}
	}
	chDB, chRef := make(chan one, 1), make(chan one, 1)
	go inspect(s.database, chDB)
	go inspect(s.reference, chRef)
	a, r := <-chDB, <-chRef
	if a.err != nil {
		return nil, a.err
	}
	if r.err != nil {
		return nil, r.err
	}
	if a.driver != r.driver {
		return nil, fmt.Errorf("database %q (%s) and reference %q (%s) use different drivers; schema_check compares databases of one kind",
			s.database, a.driver, s.reference, r.driver)
	}
	res := &result{dbName: s.database, refName: s.reference}
	if s.migrations != "" {
		_, inA := a.schema.Tables[s.migrations]
		_, inR := r.schema.Tables[s.migrations]
		if inA || inR {
			res.leftOut = s.migrations
		}
		delete(a.schema.Tables, s.migrations)
		delete(r.schema.Tables, s.migrations)
	}
	a.schema.drop(s.ignore)
	r.schema.drop(s.ignore)
	res.diffs = Differences(a.schema, r.schema)
	res.diff = Render(res.diffs)
	res.tablesDB = len(a.schema.Tables)
	res.hashDB = hashSchema(a.schema)
	res.hashRef = hashSchema(r.schema)
	return res, nil
}

// hashSchema fingerprints a schema for the plan's facts: diffing it against
// an empty schema lists every object once, in a stable order.
func hashSchema(s *Schema) string {
	h := sha256.Sum256([]byte(Diff(newSchema(), s)))
	return hex.EncodeToString(h[:8])
}

func (r *result) outputs() map[string]cty.Value {
	return map[string]cty.Value{"matches": cty.BoolVal(r.diff == ""), "diff": cty.StringVal(r.diff)}
}

func (r *result) headline() string {
	out := ""
	if r.diff == "" {
		out = fmt.Sprintf("database.%s matches database.%s (%s)", r.dbName, r.refName, plural(r.tablesDB, "table"))
	} else {
		out = fmt.Sprintf("database.%s differs from database.%s: %s", r.dbName, r.refName, summary(r.diffs))
	}
	if r.leftOut != "" {
		out += fmt.Sprintf("; %s (migrate's bookkeeping) left out", r.leftOut)
	}
	return out
}

// data is the comparison for programs (plan -json): every difference as an object.
func (r *result) data() json.RawMessage {
	diffs := r.diffs
	if diffs == nil {
		diffs = []Difference{}
	}
	b, _ := json.Marshal(struct {
		Matches     bool         `json:"matches"`
		Database    string       `json:"database"`
		Reference   string       `json:"reference"`
		LeftOut     []string     `json:"left_out,omitempty"`
		Differences []Difference `json:"differences"`
	}{r.diff == "", r.dbName, r.refName, nonEmpty(r.leftOut), diffs})
	return b
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// legend explains the diff's signs; it heads the diff in plan and in errors.
func (r *result) legend() string {
	return fmt.Sprintf("- only in database.%s, + only in database.%s, ~ %s -> %s\n", r.dbName, r.refName, r.dbName, r.refName)
}

// Plan inspects both databases read-only, so that .matches and .diff are
// known at plan time and `when` can be decided there.
func (*SchemaCheck) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	s, ds := parse(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	if s.database == "" || s.reference == "" {
		return &modules.Plan{Change: modules.Read, Summary: "compare schemas (databases known after apply)"}, nil
	}
	res, err := compare(ctx, req.Env, s)
	if err != nil {
		return nil, err
	}
	p := &modules.Plan{
		Change:  modules.Read,
		Summary: res.headline(),
		Undo:    "nothing to undo (reads only)",
		Outputs: res.outputs(),
		Data:    res.data(),
		Facts: map[string]string{
			"schema database." + s.database:  res.hashDB,
			"schema database." + s.reference: res.hashRef,
		},
	}
	if res.diff != "" {
		p.Detail = res.legend() + res.diff
		if s.fail {
			p.Warnings = append(p.Warnings, "the schemas differ and on_mismatch = \"fail\": apply will stop here")
		}
	}
	return p, nil
}

func (*SchemaCheck) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	s, ds := parse(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	if s.database == "" || s.reference == "" {
		return nil, diags.Err(hcl.Diagnostics{diags.At(req.Config.DeclRange, "Database unknown",
			"database and reference must be known when schema_check runs.")})
	}
	res, err := compare(ctx, req.Env, s)
	if err != nil {
		return nil, err
	}
	if req.Log != nil {
		fmt.Fprintln(req.Log, res.headline())
		if res.diff != "" {
			fmt.Fprint(req.Log, res.legend()+res.diff)
		}
	}
	if res.diff != "" && s.fail {
		return nil, diags.Err(hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  res.headline(),
			Detail:   strings.TrimRight(res.legend()+res.diff, "\n") + "\n\nSet on_mismatch = \"continue\" to go on and branch on .matches instead.",
			Subject:  req.Config.DeclRange.Ptr(),
		}})
	}
	return &modules.Outcome{Message: res.headline(), Outputs: res.outputs()}, nil
}
