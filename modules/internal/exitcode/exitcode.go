// Package exitcode holds what the run action and the command check share:
// expected exit codes (expect_exit) and the command output they report.
// It imports only modules.
package exitcode

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
)

// MessageCap bounds the output kept in Outcome.Message (the journal line).
const MessageCap = 4 << 10

// Parse returns obj.attr (expect_exit) as exit codes; ok is false when it
// is absent (then the default [0]).
func Parse(v cty.Value, attr string) (codes []int, ok bool, err error) {
	l := modules.Get(v, attr)
	if l.IsNull() || !l.IsKnown() {
		return []int{0}, false, nil
	}
	for it := l.ElementIterator(); it.Next(); {
		_, e := it.Element()
		e, _ = e.Unmark()
		if !e.IsKnown() || e.IsNull() {
			continue
		}
		bf := e.AsBigFloat()
		n, acc := bf.Int64()
		if !bf.IsInt() || acc != 0 || n < 0 || n > 255 {
			return nil, true, fmt.Errorf("exit codes are whole numbers from 0 to 255, not %s", bf.Text('g', -1))
		}
		codes = append(codes, int(n))
	}
	return codes, true, nil
}

// Output returns a command's stdout and stderr, trimmed to MessageCap (the tail
// is kept: errors come last), with secrets scrubbed before the cut.
func Output(res modules.Result, secrets *modules.Secrets) string {
	var b bytes.Buffer
	b.Write(bytes.TrimSpace(res.Stdout))
	if e := bytes.TrimSpace(res.Stderr); len(e) > 0 {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.Write(e)
	}
	s := secrets.Redact(b.String())
	if len(s) > MessageCap {
		s = "[...] " + s[len(s)-MessageCap:]
	}
	if res.Truncated {
		s += "\n[output truncated]"
	}
	return s
}

// Text formats exit codes as [0, 3].
func Text(c []int) string {
	s := make([]string, len(c))
	for i, n := range c {
		s[i] = fmt.Sprint(n)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
