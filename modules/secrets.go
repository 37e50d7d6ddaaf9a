package modules

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Redacted is what text shows in place of a sensitive value.
const Redacted = "(sensitive)"

// MinSecret is the shortest value Secrets scrubs from text: shorter ones
// would blank out ordinary words and digits. Views still hide them by their
// marks; only free text (command output, errors) can show them.
const MinSecret = 6

// Secrets is the set of sensitive strings of a run: the values of sensitive
// variables and every string decoded from a marked value (base64encode(var.x),
// a field of a sensitive object, a command built with one). A module gets the
// raw strings to do its work (send a command); everything that leaves as text
// (errors, log lines, outcome messages, the journal) is passed through
// Redact, which knows the forms a value takes in text: as is, escaped by %q
// or JSON, quoted for the shell, URL-encoded, and line by line. Redact text
// before cutting it: a cut value no longer matches. The zero value and nil
// are empty sets; methods are safe for concurrent use.
type Secrets struct {
	mu    sync.RWMutex
	seen  map[string]bool
	forms map[string]bool
	repl  *strings.Replacer // nil: rebuild from forms
}

// NewSecrets returns a set holding values.
func NewSecrets(values ...string) *Secrets {
	s := &Secrets{}
	s.Add(values...)
	return s
}

// Add puts values (and their text forms) into the set.
func (s *Secrets) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < MinSecret || s.seen[v] {
			continue
		}
		if s.seen == nil {
			s.seen, s.forms = map[string]bool{}, map[string]bool{}
		}
		s.seen[v] = true
		for _, f := range textForms(v) {
			if len(f) >= MinSecret && !s.forms[f] {
				s.forms[f] = true
				s.repl = nil
			}
		}
	}
}

// Empty reports whether the set holds nothing to scrub.
func (s *Secrets) Empty() bool {
	if s == nil {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.forms) == 0
}

// Values returns the values added, sorted (not their derived forms).
func (s *Secrets) Values() []string {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.seen))
	for v := range s.seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Redact replaces every form of every value in text by "(sensitive)".
func (s *Secrets) Redact(text string) string {
	if s == nil || text == "" {
		return text
	}
	s.mu.RLock()
	r := s.repl
	empty := len(s.forms) == 0
	s.mu.RUnlock()
	if empty {
		return text
	}
	if r == nil {
		s.mu.Lock()
		if s.repl == nil {
			forms := make([]string, 0, len(s.forms))
			for f := range s.forms {
				forms = append(forms, f)
			}
			// The replacer tries its pairs in order: longest first, so a value
			// that contains another is hidden whole.
			sort.Slice(forms, func(i, j int) bool {
				if len(forms[i]) != len(forms[j]) {
					return len(forms[i]) > len(forms[j])
				}
				return forms[i] < forms[j]
			})
			pairs := make([]string, 0, 2*len(forms))
			for _, f := range forms {
				pairs = append(pairs, f, Redacted)
			}
			s.repl = strings.NewReplacer(pairs...)
		}
		r = s.repl
		s.mu.Unlock()
	}
	return r.Replace(text)
}

// textForms are the ways v can appear in text that upgrader or a host
// writes: as is, inside "%q" and JSON strings, inside '...' for the shell,
// URL-encoded, and each line of a multi-line value (a private key printed
// line by line).
func textForms(v string) []string {
	forms := []string{v}
	if q := strconv.Quote(v); len(q) > 2 {
		forms = append(forms, q[1:len(q)-1])
	}
	if q := strconv.QuoteToASCII(v); len(q) > 2 {
		forms = append(forms, q[1:len(q)-1])
	}
	if js, err := json.Marshal(v); err == nil && len(js) > 2 {
		forms = append(forms, string(js[1:len(js)-1]))
	}
	forms = append(forms, strings.ReplaceAll(v, "'", `'\''`), url.QueryEscape(v), url.PathEscape(v))
	if strings.Contains(v, "\n") {
		for _, l := range strings.Split(v, "\n") {
			// short lines (a blank, "}") are too common to scrub
			if l = strings.TrimSpace(l); len(l) >= 8 {
				forms = append(forms, l)
			}
		}
	}
	return forms
}
