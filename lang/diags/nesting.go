package diags

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// MaxNesting bounds how deeply HCL source may nest: brackets, braces,
// parentheses, interpolations, unary operators and conditionals. The HCL
// parser recurses once per level, and 100,000 levels exhaust the Go stack, a
// crash no recover can catch; real configurations stay far below this.
const MaxNesting = 256

// Nesting reports source that nests deeper than MaxNesting, before it is
// given to the parser. template is true for template files (text with
// ${...} and %{...} sequences) and false for configuration files and
// expressions. The scan follows strings, comments and heredocs as the
// parser does; where it cannot tell, it counts a level too many, never one
// too few.
func Nesting(src []byte, filename string, template bool) hcl.Diagnostics {
	type frame struct {
		mode   byte   // 'c' code, 's' quoted string, 'h' heredoc, 't' template text
		marker []byte // heredoc end marker
		extra  int    // conditionals (?) opened in this code frame
	}
	stack := []frame{{mode: 'c'}}
	if template {
		stack[0].mode = 't'
	}
	depth, unary := 0, 0
	line, col := 1, 1
	lineStart := true
	tooDeep := func(i int) hcl.Diagnostics {
		pos := hcl.Pos{Line: line, Column: col, Byte: i}
		end := hcl.Pos{Line: line, Column: col + 1, Byte: i + 1}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Too deeply nested",
			Detail: fmt.Sprintf("Brackets, braces, parentheses, interpolations and operators nest more than %d levels deep here. "+
				"Such input is refused before parsing, since parsing it would exhaust memory.", MaxNesting),
			Subject: &hcl.Range{Filename: filename, Start: pos, End: end},
		}}
	}
	push := func(f frame) { stack = append(stack, f); depth++ }
	pop := func() {
		if len(stack) > 1 {
			depth -= 1 + stack[len(stack)-1].extra
			stack = stack[:len(stack)-1]
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		top := &stack[len(stack)-1]
		atLineStart := lineStart
		lineStart = c == '\n'
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		next := byte(0)
		if i+1 < len(src) {
			next = src[i+1]
		}
		switch top.mode {
		case 'h':
			if atLineStart {
				end := bytes.IndexByte(src[i:], '\n')
				if end < 0 {
					end = len(src) - i
				}
				if bytes.Equal(bytes.TrimSpace(src[i:i+end]), top.marker) {
					pop()
					i += end - 1
					col += end - 1
					continue
				}
			}
			fallthrough
		case 's', 't':
			switch {
			case c == '\\' && top.mode == 's':
				i++
				col++
			case (c == '$' || c == '%') && next == c && i+2 < len(src) && src[i+2] == '{':
				i += 2 // $${ and %%{ are literal
				col += 2
			case (c == '$' || c == '%') && next == '{':
				i++
				col++
				push(frame{mode: 'c'})
			case c == '"' && top.mode == 's':
				pop()
			case c == '\n' && top.mode == 's':
				pop() // a quoted string ends at the line's end (the parser reports it)
			}
		case 'c':
			isUnary := c == '!' || c == '-'
			switch {
			case c == '"':
				push(frame{mode: 's'})
			case c == '(' || c == '[' || c == '{':
				push(frame{mode: 'c'})
			case c == ')' || c == ']' || c == '}':
				pop()
			case c == '?':
				top.extra++
				depth++
			case c == '#' || (c == '/' && next == '/'):
				for i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			case c == '/' && next == '*':
				end := bytes.Index(src[i+2:], []byte("*/"))
				if end < 0 {
					end = len(src) - i - 2
				}
				line += bytes.Count(src[i:i+2+end], []byte("\n"))
				i += end + 3
			case c == '<' && next == '<':
				j := i + 2
				if j < len(src) && src[j] == '-' {
					j++
				}
				k := j
				for k < len(src) && (src[k] == '_' || src[k] >= 'A' && src[k] <= 'Z' || src[k] >= 'a' && src[k] <= 'z' || src[k] >= '0' && src[k] <= '9') {
					k++
				}
				if k > j && k < len(src) && (src[k] == '\n' || src[k] == '\r') {
					push(frame{mode: 'h', marker: src[j:k]})
					col += k - i - 1
					i = k - 1 // the newline is read next, so the body starts at a line start
				}
			}
			switch {
			case isUnary:
				unary++
			case c != ' ' && c != '\t' && c != '\r' && c != '\n':
				unary = 0
			}
		}
		if depth+unary > MaxNesting {
			return tooDeep(i)
		}
	}
	return nil
}
