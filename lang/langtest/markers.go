// Package langtest runs data-driven configuration tests: directories of
// *.hcl files whose lines carry "# ERROR: summary" where a diagnostic must
// point. For tests only.
package langtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// Subdirs lists the directories in dir, sorted.
func Subdirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// DiagString is a one-line form of d for test failures.
func DiagString(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return fmt.Sprintf("(no range): %s: %s", d.Summary, d.Detail)
	}
	return fmt.Sprintf("%s:%d,%d: %s: %s", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail)
}

// Marker is an expected diagnostic: "# ERROR: summary" on the line it must
// point at (several on one line: "# ERROR: a # ERROR: b").
type Marker struct {
	File    string
	Line    int
	Summary string
}

func (m Marker) String() string { return fmt.Sprintf("%s:%d: %s", m.File, m.Line, m.Summary) }

// Markers returns the "# ERROR: summary" markers of src, the one parser of
// them for every data-driven test (lang, executor, modules via modtest).
func Markers(file string, src []byte) []Marker {
	var out []Marker
	for i, text := range strings.Split(string(src), "\n") {
		for {
			j := strings.Index(text, "# ERROR: ")
			if j < 0 {
				break
			}
			rest := text[j+len("# ERROR: "):]
			summary := rest
			if k := strings.Index(rest, " # ERROR: "); k >= 0 {
				summary = rest[:k]
			}
			out = append(out, Marker{File: file, Line: i + 1, Summary: strings.TrimSpace(summary)})
			text = rest
		}
	}
	return out
}

func readMarkers(t *testing.T, dir string) []Marker {
	t.Helper()
	var out []Marker
	files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Markers(filepath.Base(f), src)...)
	}
	return out
}

// CheckMarkers compares error diagnostics with the markers of dir: each
// marker must be matched by one diagnostic on its line with its summary,
// and each error must be matched by a marker.
func CheckMarkers(t *testing.T, dir string, diags hcl.Diagnostics) {
	t.Helper()
	markers := readMarkers(t, dir)
	if len(markers) == 0 {
		t.Fatalf("%s has no # ERROR: markers", dir)
	}
	used := make([]bool, len(markers))
	var unexpected []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		found := false
		for i, m := range markers {
			if used[i] || d.Subject == nil {
				continue
			}
			if filepath.Base(d.Subject.Filename) == m.File && d.Subject.Start.Line == m.Line && d.Summary == m.Summary {
				used[i], found = true, true
				break
			}
		}
		if !found {
			unexpected = append(unexpected, DiagString(d))
		}
	}
	sort.Strings(unexpected)
	for _, u := range unexpected {
		t.Errorf("unexpected diagnostic: %s", u)
	}
	for i, m := range markers {
		if !used[i] {
			t.Errorf("missing diagnostic: %s", m)
		}
	}
}
