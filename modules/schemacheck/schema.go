package schemacheck

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Schema is what schema_check compares: the user tables of one database,
// and optionally its views and enum types, with every type, default and
// definition already normalised (see normalize.go).
type Schema struct {
	Tables map[string]*Table
	Views  map[string]string // name -> normalised definition
	Enums  map[string]string // name -> "('a', 'b')"
}

// Table is one table. Constraints and indexes are keyed by their definition,
// not their name: the same index under another generated name is not drift.
type Table struct {
	Name    string
	Columns []*Column // by position
	PK      string    // "(id, region)"; "" when none
	Uniques map[string]string
	Indexes map[string]string
	FKs     map[string]string
}

// Column is one column.
type Column struct {
	Name     string
	Type     string
	Nullable bool
	Default  string // "" when none
}

func newSchema() *Schema {
	return &Schema{Tables: map[string]*Table{}, Views: map[string]string{}, Enums: map[string]string{}}
}

func (s *Schema) table(name string) *Table {
	t, ok := s.Tables[name]
	if !ok {
		t = &Table{Name: name, Uniques: map[string]string{}, Indexes: map[string]string{}, FKs: map[string]string{}}
		s.Tables[name] = t
	}
	return t
}

// drop removes tables (and views) matching any ignore pattern (path.Match globs).
func (s *Schema) drop(ignore []string) {
	match := func(name string) bool {
		for _, p := range ignore {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	for n := range s.Tables {
		if match(n) {
			delete(s.Tables, n)
		}
	}
	for n := range s.Views {
		if match(n) {
			delete(s.Views, n)
		}
	}
}

func (c *Column) String() string {
	s := c.Name + " " + c.Type
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
// once, tables in name order.
func Diff(db, ref *Schema) string {
	var b strings.Builder
	for _, name := range union(keys(db.Tables), keys(ref.Tables)) {
		a, r := db.Tables[name], ref.Tables[name]
		switch {
		case a == nil:
			fmt.Fprintf(&b, "+ table %s (%s)\n", name, plural(len(r.Columns), "column"))
		case r == nil:
			fmt.Fprintf(&b, "- table %s (%s)\n", name, plural(len(a.Columns), "column"))
		default:
			if lines := diffTable(a, r); len(lines) > 0 {
				fmt.Fprintf(&b, "~ table %s\n", name)
				for _, l := range lines {
					b.WriteString("    " + l + "\n")
				}
			}
		}
	}
	for _, name := range union(keys(db.Views), keys(ref.Views)) {
		a, okA := db.Views[name]
		r, okR := ref.Views[name]
		switch {
		case !okA:
			fmt.Fprintf(&b, "+ view %s\n", name)
		case !okR:
			fmt.Fprintf(&b, "- view %s\n", name)
		case a != r:
			fmt.Fprintf(&b, "~ view %s: definition differs\n      database:  %s\n      reference: %s\n", name, a, r)
		}
	}
	for _, name := range union(keys(db.Enums), keys(ref.Enums)) {
		a, okA := db.Enums[name]
		r, okR := ref.Enums[name]
		switch {
		case !okA:
			fmt.Fprintf(&b, "+ enum %s %s\n", name, r)
		case !okR:
			fmt.Fprintf(&b, "- enum %s %s\n", name, a)
		case a != r:
			fmt.Fprintf(&b, "~ enum %s: %s -> %s\n", name, a, r)
		}
	}
	return b.String()
}

func diffTable(a, r *Table) []string {
	var out []string
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
	for _, n := range order {
		x, y := ac[n], rc[n]
		switch {
		case x == nil:
			out = append(out, "+ column "+y.String())
		case y == nil:
			out = append(out, "- column "+x.String())
		default:
			if x.Type != y.Type {
				out = append(out, fmt.Sprintf("~ column %s: type %s -> %s", n, x.Type, y.Type))
			}
			if x.Nullable != y.Nullable {
				out = append(out, fmt.Sprintf("~ column %s: %s -> %s", n, nullability(x.Nullable), nullability(y.Nullable)))
			}
			if x.Default != y.Default {
				out = append(out, fmt.Sprintf("~ column %s: default %s -> %s", n, orNone(x.Default), orNone(y.Default)))
			}
		}
	}
	if a.PK != r.PK {
		switch {
		case a.PK == "":
			out = append(out, "+ primary key "+r.PK)
		case r.PK == "":
			out = append(out, "- primary key "+a.PK)
		default:
			out = append(out, fmt.Sprintf("~ primary key %s -> %s", a.PK, r.PK))
		}
	}
	out = append(out, diffSet("unique", a.Uniques, r.Uniques)...)
	out = append(out, diffSet("index", a.Indexes, r.Indexes)...)
	out = append(out, diffSet("foreign key", a.FKs, r.FKs)...)
	return out
}

// diffSet compares definitions (keys); values are names, shown for the
// reader. A definition that changed under the same name is one "~" line.
func diffSet(kind string, a, r map[string]string) []string {
	var removed, added []string
	for _, def := range union(keys(a), keys(r)) {
		_, okA := a[def]
		_, okR := r[def]
		switch {
		case !okA:
			added = append(added, def)
		case !okR:
			removed = append(removed, def)
		}
	}
	var out []string
	pairedAdd := map[string]bool{}
	for _, da := range removed {
		paired := false
		for _, dr := range added {
			if !pairedAdd[dr] && a[da] == r[dr] {
				out = append(out, fmt.Sprintf("~ %s %s: %s -> %s", kind, a[da], da, dr))
				pairedAdd[dr], paired = true, true
				break
			}
		}
		if !paired {
			out = append(out, fmt.Sprintf("- %s %s %s", kind, a[da], da))
		}
	}
	for _, dr := range added {
		if !pairedAdd[dr] {
			out = append(out, fmt.Sprintf("+ %s %s %s", kind, r[dr], dr))
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

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range [][]string{a, b} {
		for _, k := range l {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// summary counts a diff's top-level lines for a one-line plan summary.
func summary(diff string) string {
	var add, del, chg int
	for _, l := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(l, "+ "):
			add++
		case strings.HasPrefix(l, "- "):
			del++
		case strings.HasPrefix(l, "~ "):
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
