package schemacheck

import (
	"regexp"
	"strings"
)

// Spelling differences that are not drift: int/int4/integer, int(11)/int,
// bool/boolean/tinyint(1), varchar(n)/character varying(n), and so on. Both
// sides are mapped to one canonical spelling before they are compared.
var typeAliases = map[string]string{
	"int4": "int", "integer": "int", "int": "int",
	"int8": "bigint", "bigint": "bigint",
	"int2": "smallint", "smallint": "smallint",
	"bool": "boolean", "boolean": "boolean",
	"float8": "double", "double precision": "double", "double": "double",
	"float4": "real", "real": "real",
	"decimal": "numeric", "numeric": "numeric",
	"character varying": "varchar", "varchar": "varchar",
	"character": "char", "char": "char", "bpchar": "char",
	"timestamp without time zone": "timestamp", "timestamp": "timestamp",
	"timestamp with time zone": "timestamptz", "timestamptz": "timestamptz",
	"time without time zone": "time", "time": "time",
	"time with time zone": "timetz", "timetz": "timetz",
	"bit varying": "varbit", "varbit": "varbit",
}

var (
	typeRE      = regexp.MustCompile(`^([a-z_][a-z0-9_ ]*?)\s*(\([^)]*\))?\s*((?:unsigned|zerofill|\s)*)\s*((?:\[\])*)$`)
	intWidthRE  = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|integer|bigint)$`)
	spacesRE    = regexp.MustCompile(`\s+`)
	castRE      = regexp.MustCompile(`('(?:[^']|'')*')::[a-z_][a-z0-9_ ]*(?:\([0-9, ]+\))?(?:\[\])?`)
	parenNumRE  = regexp.MustCompile(`^\((-?[0-9.]+)\)$`)
	nowRE       = regexp.MustCompile(`(?i)^(now\(\)|current_timestamp(\(\))?|localtimestamp(\(\))?)$`)
	numericLike = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

// normType returns the canonical spelling of a column type.
func normType(t string) string {
	t = strings.ToLower(strings.TrimSpace(spacesRE.ReplaceAllString(t, " ")))
	m := typeRE.FindStringSubmatch(t)
	if m == nil {
		return t // enum('a','b'), user types with dots, ...: compared as spelled
	}
	base, args, mods, arr := strings.TrimSpace(m[1]), m[2], strings.TrimSpace(spacesRE.ReplaceAllString(m[3], " ")), m[4]
	if base == "tinyint" && args == "(1)" && mods == "" {
		return "boolean" + arr
	}
	if intWidthRE.MatchString(base) {
		args = "" // display width: MySQL int(11) is int
	}
	if a, ok := typeAliases[base]; ok {
		base = a
	}
	args = strings.ReplaceAll(args, " ", "")
	out := base + args
	if mods != "" {
		out += " " + mods
	}
	return out + arr
}

// normDefault returns the canonical spelling of a column default ("" for none).
func normDefault(driver, d string, isNull bool) string {
	if isNull {
		return ""
	}
	d = strings.TrimSpace(d)
	if d == "" && driver == "postgres" {
		return ""
	}
	if strings.EqualFold(d, "null") {
		return ""
	}
	if driver == "postgres" {
		// 'abc'::character varying -> 'abc'; nextval('s'::regclass) -> nextval('s')
		for {
			n := castRE.ReplaceAllString(d, "$1")
			if n == d {
				break
			}
			d = n
		}
		if m := parenNumRE.FindStringSubmatch(d); m != nil {
			d = m[1]
		}
	}
	if driver == "mysql" {
		// MariaDB quotes string defaults, MySQL does not: quote bare strings
		// that are neither numbers nor expressions.
		if !strings.HasPrefix(d, "'") && !numericLike.MatchString(d) && !strings.Contains(d, "(") &&
			!nowRE.MatchString(d) && !strings.HasPrefix(strings.ToLower(d), "b'") {
			d = "'" + strings.ReplaceAll(d, "'", "''") + "'"
		}
	}
	if nowRE.MatchString(d) {
		return "current_timestamp"
	}
	return d
}

// normDef collapses whitespace in a view definition and drops qualifiers
// naming the database itself (MariaDB writes `db`.`table`), which differ
// between production and test by design.
func normDef(def, dbName string) string {
	if dbName != "" {
		def = strings.ReplaceAll(def, "`"+dbName+"`.", "")
	}
	def = strings.TrimSpace(spacesRE.ReplaceAllString(def, " "))
	return strings.TrimSuffix(def, ";")
}
