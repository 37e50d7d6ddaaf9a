package modules

import (
	"fmt"
	"strings"
)

// ShellQuote quotes s for a POSIX shell command line (single quotes), so
// paths and values given by users can be spliced into a Command.Cmd.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// OnHost prefixes err with the host's name unless it already names it (the
// transport's errors do), so that every host failure names its host once.
func OnHost(host string, err error) error {
	if err == nil || strings.Contains(err.Error(), `host "`+host+`"`) {
		return err
	}
	return fmt.Errorf("host %q: %w", host, err)
}
