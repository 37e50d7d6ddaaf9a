// Package diags owns upgrader's diagnostics: hcl.Diagnostics for anything a
// user wrote (with a Subject range, so they print as FILE:LINE:COL with the
// source line) and sourceless diagnostics for host and network failures.
// It imports nothing of upgrader's own.
package diags

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostics is the one type every layer returns for problems a user must see.
type Diagnostics = hcl.Diagnostics

// Error is a sourceless error-severity diagnostic.
func Error(summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
}

// At is an error diagnostic pointing at rng.
func At(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// Host is a sourceless diagnostic for a failure on a named host, so that every
// transport error names the host it happened on.
func Host(host string, err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("host %q: %s", host, firstLine(err)),
		Detail:   err.Error(),
	}
}

// FromErr turns an error into diagnostics: a DiagError passes through
// unchanged, anything else becomes one sourceless diagnostic.
func FromErr(err error) Diagnostics {
	if err == nil {
		return nil
	}
	var de *DiagError
	if errors.As(err, &de) {
		return de.Diags
	}
	return Diagnostics{Error(err.Error(), "")}
}

// DiagError carries diagnostics through an error return (for module calls
// that must report a FILE:LINE:COL problem at apply time).
type DiagError struct{ Diags Diagnostics }

func (e *DiagError) Error() string { return e.Diags.Error() }

// Err wraps diagnostics as an error; nil when they hold no error.
func Err(d Diagnostics) error {
	if !d.HasErrors() {
		return nil
	}
	return &DiagError{Diags: d}
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}
