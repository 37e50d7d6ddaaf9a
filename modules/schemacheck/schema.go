package schemacheck

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Schema is what schema_check compares: the user tables of one database,
// its views, enum types, sequences and routines, with every type, default
// and definition already normalised (see normalize.go).
type Schema struct {
	Tables    map[string]*Table
	Views     map[string]string // name -> normalised definition
	Enums     map[string]string // name -> "('a', 'b')"
	Sequences map[string]string // name -> "bigint start 1 increment 1 min 1 max 9223372036854775807 no cycle"
	Routines  map[string]string // "function f(integer)" / "procedure p" -> normalised definition
}

// Table is one table. Constraints and indexes are keyed by their definition,
// not their name: the same index under another generated name is not drift.
// Triggers are keyed by name (a trigger's definition contains its name).
type Table struct {
	Name      string
	Columns   []*Column // by position
	PK        string    // "(id, region)"; "" when none
	Uniques   map[string]string
	Indexes   map[string]string
	FKs       map[string]string
	Checks    map[string]string // definition -> name
	Triggers  map[string]string // name -> normalised definition
	Collation string            // MySQL/MariaDB: the table's default collation; "" on PostgreSQL
}

// Column is one column.
type Column struct {
	Name      string
	Type      string
	Nullable  bool
	Default   string // "" when none
	Collation string // "" when the type's (PostgreSQL) or the table's (MySQL) default
}

// Difference is one line of the diff, for programs (plan -json "data").
type Difference struct {
	Change    string `json:"change"`          // "+" only in the reference, "-" only in the database, "~" both, different
	Object    string `json:"object"`          // table, column, primary key, unique, index, foreign key, check, trigger, collation, view, enum, sequence, function, procedure
	Table     string `json:"table,omitempty"` // the table a column, key, index, check or trigger belongs to
	Name      string `json:"name"`
	Database  string `json:"database,omitempty"`  // its definition in the database ("" when absent)
	Reference string `json:"reference,omitempty"` // its definition in the reference
	text      string // the line as the human diff prints it (without the table indent)
}

func newSchema() *Schema {
	return &Schema{Tables: map[string]*Table{}, Views: map[string]string{}, Enums: map[string]string{},
		Sequences: map[string]string{}, Routines: map[string]string{}}
}

func (s *Schema) table(name string) *Table {
	t, ok := s.Tables[name]
	if !ok {
		t = &Table{Name: name, Uniques: map[string]string{}, Indexes: map[string]string{}, FKs: map[string]string{},
			Checks: map[string]string{}, Triggers: map[string]string{}}
		s.Tables[name] = t
	}
	return t
}

// drop removes the objects whose name matches any ignore pattern (path.Match
// globs): tables, views, enums, sequences and routines (by bare name).
func (s *Schema) drop(ignore []string) {
	match := func(name string) bool {
		for _, p := range ignore {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	for _, m := range []map[string]string{s.Views, s.Enums, s.Sequences} {
		maps.DeleteFunc(m, func(n, _ string) bool { return match(n) })
	}
	maps.DeleteFunc(s.Tables, func(n string, _ *Table) bool { return match(n) })
	maps.DeleteFunc(s.Routines, func(n, _ string) bool { return match(routineName(n)) })
}

// routineName is "f" of "function f(integer)".
func routineName(key string) string {
	_, n, _ := strings.Cut(key, " ")
	n, _, _ = strings.Cut(n, "(")
	return n
}

func (c *Column) String() string {
	s := c.Name + " " + c.Type
	if c.Collation != "" {
		s += " COLLATE " + c.Collation
	}
	if c.Nullable {
		s += " NULL"
	} else {
		s += " NOT NULL"
	}
	if c.Default != "" {
		s += " DEFAULT " + c.Default
	}
	return s
}

func nullability(n bool) string {
	if n {
		return "NULL"
	}
	return "NOT NULL"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Diff lists how db differs from ref: "-" only in db, "+" only in ref, "~"
// db's value -> ref's value. Empty when they match. Each difference appears
// once, tables in name order, grouped per table.
func Diff(db, ref *Schema) string {
	return Render(Differences(db, ref))
}

// Render prints differences as the human diff: table-level ones indented
// under a "~ table NAME" header.
func Render(ds []Difference) string {
	var b strings.Builder
	table := ""
	for _, d := range ds {
		if d.Table == "" {
			table = ""
			b.WriteString(d.text + "\n")
			continue
		}
		if d.Table != table {
			table = d.Table
			fmt.Fprintf(&b, "~ table %s\n", table)
		}
		for _, l := range strings.Split(d.text, "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// Differences compares db with ref, in the order Render prints them:
// tables (each with its own changes), views, enums, sequences, routines.
func Differences(db, ref *Schema) []Difference {
	var out []Difference
	for _, name := range union(db.Tables, ref.Tables) {
		a, r := db.Tables[name], ref.Tables[name]
		switch {
		case a == nil:
			out = append(out, Difference{Change: "+", Object: "table", Name: name, Reference: tableDef(r),
				text: fmt.Sprintf("+ table %s (%s)", name, plural(len(r.Columns), "column"))})
		case r == nil:
			out = append(out, Difference{Change: "-", Object: "table", Name: name, Database: tableDef(a),
				text: fmt.Sprintf("- table %s (%s)", name, plural(len(a.Columns), "column"))})
		default:
			out = append(out, diffTable(a, r)...)
		}
	}
	out = append(out, diffNamed("view", db.Views, ref.Views, "", definitionDiffers)...)
	out = append(out, diffNamed("enum", db.Enums, ref.Enums, "", inline)...)
	out = append(out, diffNamed("sequence", db.Sequences, ref.Sequences, "", inline)...)
	for _, kind := range []string{"function", "procedure"} {
		out = append(out, diffNamed(kind, routines(db, kind), routines(ref, kind), "", definitionDiffers)...)
	}
	return out
}

// routines are the schema's routines of one kind, by "name(arguments)".
func routines(s *Schema, kind string) map[string]string {
	out := map[string]string{}
	for key, def := range s.Routines {
		if k, name, _ := strings.Cut(key, " "); k == kind {
			out[name] = def
		}
	}
	return out
}

// tableDef is a table's columns, for programs reading a "+"/"-" table.
func tableDef(t *Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.String()
	}
	return "(" + strings.Join(cols, ", ") + ")"
}

func added(object, name, table, def, text string) Difference {
	return Difference{Change: "+", Object: object, Table: table, Name: name, Reference: def, text: "+ " + text}
}

func removed(object, name, table, def, text string) Difference {
	return Difference{Change: "-", Object: object, Table: table, Name: name, Database: def, text: "- " + text}
}

// How a named object present on both sides with different definitions is
// printed: on one line (enums, sequences), or with both definitions under it.
const (
	inline            = false
	definitionDiffers = true
)

// diffNamed compares objects keyed by name (views, enums, sequences,
// routines, triggers).
func diffNamed(object string, a, r map[string]string, table string, long bool) []Difference {
	var out []Difference
	for _, name := range union(a, r) {
		x, okA := a[name]
		y, okR := r[name]
		switch {
		case !okA:
			text := object + " " + name
			if !long {
				text += " " + y
			}
			out = append(out, added(object, name, table, y, text))
		case !okR:
			text := object + " " + name
			if !long {
				text += " " + x
			}
			out = append(out, removed(object, name, table, x, text))
		case x != y:
			d := Difference{Change: "~", Object: object, Table: table, Name: name, Database: x, Reference: y}
			if long {
				dx, dy := around(x, y)
				d.text = fmt.Sprintf("~ %s %s: definition differs\n      database:  %s\n      reference: %s", object, name, dx, dy)
			} else {
				d.text = fmt.Sprintf("~ %s %s: %s -> %s", object, name, x, y)
			}
			out = append(out, d)
		}
	}
	return out
}

// around shortens two long one-line definitions to the part where they
// start to differ, so a 3 KB function body still fits a terminal; programs
// get both in full.
func around(a, b string) (string, string) {
	const width, before = 160, 40
	if len(a) <= width && len(b) <= width {
		return a, b
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-before)
	cut := func(s string) string {
		out := s[start:]
		if len(out) > width {
			out = out[:width] + "…"
		}
		if start > 0 {
			out = "…" + out
		}
		return strings.ToValidUTF8(out, "")
	}
	return cut(a), cut(b)
}

func diffTable(a, r *Table) []Difference {
	var out []Difference
	t := a.Name
	ac, rc := map[string]*Column{}, map[string]*Column{}
	var order []string
	for _, c := range a.Columns {
		ac[c.Name] = c
		order = append(order, c.Name)
	}
	for _, c := range r.Columns {
		rc[c.Name] = c
		if ac[c.Name] == nil {
			order = append(order, c.Name)
		}
	}
	change := func(object, name, x, y, text string) {
		out = append(out, Difference{Change: "~", Object: object, Table: t, Name: name, Database: x, Reference: y, text: text})
	}
	for _, n := range order {
		x, y := ac[n], rc[n]
		switch {
		case x == nil:
			out = append(out, added("column", n, t, y.String(), "column "+y.String()))
		case y == nil:
			out = append(out, removed("column", n, t, x.String(), "column "+x.String()))
		default:
			if x.Type != y.Type {
				change("column", n, x.String(), y.String(), fmt.Sprintf("~ column %s: type %s -> %s", n, x.Type, y.Type))
			}
			if x.Collation != y.Collation {
				change("column", n, x.String(), y.String(), fmt.Sprintf("~ column %s: collation %s -> %s", n, orDefault(x.Collation), orDefault(y.Collation)))
			}
			if x.Nullable != y.Nullable {
				change("column", n, x.String(), y.String(), fmt.Sprintf("~ column %s: %s -> %s", n, nullability(x.Nullable), nullability(y.Nullable)))
			}
			if x.Default != y.Default {
				change("column", n, x.String(), y.String(), fmt.Sprintf("~ column %s: default %s -> %s", n, orNone(x.Default), orNone(y.Default)))
			}
		}
	}
	if a.PK != r.PK {
		switch {
		case a.PK == "":
			out = append(out, added("primary key", "", t, r.PK, "primary key "+r.PK))
		case r.PK == "":
			out = append(out, removed("primary key", "", t, a.PK, "primary key "+a.PK))
		default:
			change("primary key", "", a.PK, r.PK, fmt.Sprintf("~ primary key %s -> %s", a.PK, r.PK))
		}
	}
	if a.Collation != r.Collation {
		change("collation", "", a.Collation, r.Collation, fmt.Sprintf("~ collation %s -> %s", orDefault(a.Collation), orDefault(r.Collation)))
	}
	out = append(out, diffSet("unique", t, a.Uniques, r.Uniques)...)
	out = append(out, diffSet("index", t, a.Indexes, r.Indexes)...)
	out = append(out, diffSet("foreign key", t, a.FKs, r.FKs)...)
	out = append(out, diffSet("check", t, a.Checks, r.Checks)...)
	out = append(out, diffNamed("trigger", a.Triggers, r.Triggers, t, definitionDiffers)...)
	return out
}

func orDefault(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

// diffSet compares definitions (keys); values are names, shown for the
// reader. A definition that changed under the same name is one "~" line.
func diffSet(kind, table string, a, r map[string]string) []Difference {
	var removedDefs, addedDefs []string
	for _, def := range union(a, r) {
		_, okA := a[def]
		_, okR := r[def]
		switch {
		case !okA:
			addedDefs = append(addedDefs, def)
		case !okR:
			removedDefs = append(removedDefs, def)
		}
	}
	var out []Difference
	pairedAdd := map[string]bool{}
	for _, da := range removedDefs {
		paired := false
		for _, dr := range addedDefs {
			if !pairedAdd[dr] && a[da] == r[dr] {
				out = append(out, Difference{Change: "~", Object: kind, Table: table, Name: a[da], Database: da, Reference: dr,
					text: fmt.Sprintf("~ %s %s: %s -> %s", kind, a[da], da, dr)})
				pairedAdd[dr], paired = true, true
				break
			}
		}
		if !paired {
			out = append(out, removed(kind, a[da], table, da, fmt.Sprintf("%s %s %s", kind, a[da], da)))
		}
	}
	for _, dr := range addedDefs {
		if !pairedAdd[dr] {
			out = append(out, added(kind, r[dr], table, dr, fmt.Sprintf("%s %s %s", kind, r[dr], dr)))
		}
	}
	return out
}

func plural(n int, w string) string {
	if n == 1 {
		return "1 " + w
	}
	return fmt.Sprintf("%d %ss", n, w)
}

// union is the sorted keys of both maps.
func union[V any](a, b map[string]V) []string {
	out := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(out)
	return slices.Compact(out)
}

// summary counts a diff's differences for a one-line plan summary (a table
// with changes counts each of them).
func summary(ds []Difference) string {
	var add, del, chg int
	for _, d := range ds {
		switch d.Change {
		case "+":
			add++
		case "-":
			del++
		case "~":
			chg++
		}
	}
	var parts []string
	if add > 0 {
		parts = append(parts, fmt.Sprintf("%d only in reference", add))
	}
	if del > 0 {
		parts = append(parts, fmt.Sprintf("%d only in database", del))
	}
	if chg > 0 {
		parts = append(parts, fmt.Sprintf("%d changed", chg))
	}
	return strings.Join(parts, ", ")
}
