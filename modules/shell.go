package modules

import "strings"

// ShellQuote quotes s for a POSIX shell command line (single quotes), so
// paths and values given by users can be spliced into a Command.Cmd.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
