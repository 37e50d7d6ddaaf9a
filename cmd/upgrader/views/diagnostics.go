package views

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/upgrader-dev/upgrader/lang"
)

// Diagnostics writes diags for people: a "FILE:LINE:COL: Error: summary"
// line, then hcl's rendering (the source line and the detail). Files maps
// the file names of the ranges to their parsed files (lang.Config.Files).
func Diagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	var buf bytes.Buffer
	tw := hcl.NewDiagnosticTextWriter(&buf, files, 100, color)
	for _, d := range diags {
		buf.Reset()
		if err := tw.WriteDiagnostic(safe(d)); err != nil {
			return err
		}
		if d.Subject != nil {
			fmt.Fprintf(w, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// safe drops the evaluation context of a diagnostic whose expression
// touches a sensitive value, so the renderer can not print the value.
func safe(d *hcl.Diagnostic) *hcl.Diagnostic {
	if d.Expression == nil || d.EvalContext == nil {
		return d
	}
	for _, t := range d.Expression.Variables() {
		v, diags := t.TraverseAbs(d.EvalContext)
		if diags.HasErrors() || lang.IsSensitive(v) {
			c := *d
			c.Expression, c.EvalContext = nil, nil
			return &c
		}
	}
	return d
}

// JSONPos is a position in a file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// JSONRange is a range in a file.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONDiagnostic is one diagnostic in -json output (docs/JSON.md).
type JSONDiagnostic struct {
	Severity string     `json:"severity"` // "error" or "warning"
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *JSONRange `json:"range,omitempty"` // absent for host and network failures
}

// JSONDiagnostics converts diags for -json output.
func JSONDiagnostics(diags hcl.Diagnostics) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := JSONDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &JSONRange{
				Filename: r.Filename,
				Start:    JSONPos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
				End:      JSONPos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte},
			}
		}
		out = append(out, jd)
	}
	return out
}

// DiagnosticsEvent writes the one line other commands print with -json
// when the configuration is invalid: {"type":"diagnostics","diagnostics":[...]}.
func DiagnosticsEvent(w io.Writer, diags hcl.Diagnostics) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "a -> b" stays readable, as in validate -json
	return enc.Encode(struct {
		Type        string           `json:"type"`
		Diagnostics []JSONDiagnostic `json:"diagnostics"`
	}{"diagnostics", JSONDiagnostics(diags)})
}

// ValidateResult is the one JSON object `upgrader validate -json` prints.
type ValidateResult struct {
	Valid        bool             `json:"valid"`
	ErrorCount   int              `json:"error_count"`
	WarningCount int              `json:"warning_count"`
	Diagnostics  []JSONDiagnostic `json:"diagnostics"`
	// Unset names the required variables that had no value: validate
	// checked the configuration with them unknown. [] when none.
	Unset []string `json:"unset"`
}

// ValidateJSON writes the validate result as one JSON object and a newline.
func ValidateJSON(w io.Writer, diags hcl.Diagnostics, unset []string) error {
	res := ValidateResult{Valid: !diags.HasErrors(), Diagnostics: JSONDiagnostics(diags), Unset: unset}
	if res.Unset == nil {
		res.Unset = []string{}
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			res.WarningCount++
		} else {
			res.ErrorCount++
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "a -> b" stays readable
	return enc.Encode(res)
}
