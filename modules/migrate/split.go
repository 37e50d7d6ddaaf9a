package migrate

import "strings"

// Statement is one SQL statement of a migration file and the line it starts on.
type Statement struct {
	SQL  string
	Line int // 1-based line of the statement's first character in the file
}

// Split cuts a migration file into statements at top-level semicolons,
// skipping those inside quotes, comments and (postgres) dollar-quoted
// bodies, so that an error can be mapped back to a line of the file.
// Statements holding only comments are dropped.
func Split(src, driver string) []Statement {
	var out []Statement
	start, line, startLine := 0, 1, 1
	hasCode := false
	mysql := driver == "mysql"
	flush := func(end int) {
		if hasCode {
			s := src[start:end]
			// Start at the first character that is not blank, so the line is exact.
			trimmed := strings.TrimLeft(s, " \t\r\n")
			l := startLine + strings.Count(s[:len(s)-len(trimmed)], "\n")
			out = append(out, Statement{SQL: strings.TrimRight(trimmed, " \t\r\n"), Line: l})
		}
		hasCode = false
	}
	i := 0
	// begin marks position i as part of a statement; the first such position starts it.
	begin := func() {
		if !hasCode {
			start, startLine = i, line
		}
		hasCode = true
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == '-' && strings.HasPrefix(src[i:], "--"), mysql && c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				end = len(src) - i - 2
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
			if i > len(src) {
				i = len(src)
			}
		case c == '\'' || c == '"' || (mysql && c == '`'):
			begin()
			j := i + 1
			for j < len(src) {
				if mysql && src[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if src[j] == c {
					if j+1 < len(src) && src[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j > len(src) {
				j = len(src)
			}
			line += strings.Count(src[i:min(j+1, len(src))], "\n")
			i = j + 1
		case !mysql && c == '$':
			begin()
			if tag, ok := dollarTag(src[i:]); ok {
				end := strings.Index(src[i+len(tag):], tag)
				if end < 0 {
					end = len(src) - i - len(tag)
				} else {
					end += len(tag)
				}
				line += strings.Count(src[i:i+len(tag)+end], "\n")
				i += len(tag) + end
				continue
			}
			i++
		case c == ';':
			flush(i)
			i++
			start, startLine = i, line
		default:
			if c != ' ' && c != '\t' && c != '\r' {
				// Comments before a statement are not part of it.
				begin()
			}
			i++
		}
	}
	flush(len(src))
	return out
}

// dollarTag recognises $$ or $name$ at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

// lineOf returns the file line of a 1-based character position inside a statement.
func (s Statement) lineOf(pos int) int {
	r := []rune(s.SQL)
	if pos < 1 || pos > len(r)+1 {
		return s.Line
	}
	return s.Line + strings.Count(string(r[:pos-1]), "\n")
}

// transactionControl reports statements that would end our own transaction.
func transactionControl(sql string) bool {
	switch strings.ToUpper(strings.Join(strings.Fields(sql), " ")) {
	case "BEGIN", "BEGIN TRANSACTION", "BEGIN WORK", "START TRANSACTION", "COMMIT", "COMMIT WORK", "END", "END TRANSACTION":
		return true
	}
	return false
}
