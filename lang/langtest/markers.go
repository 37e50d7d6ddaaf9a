// Package langtest runs data-driven configuration tests: directories of
// *.hcl files whose lines carry "# ERROR: summary" where a diagnostic must
// point. For tests only.
package langtest

import (
	"bufio"
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

// marker is an expected diagnostic: "# ERROR: summary" on the line it must point at.
type marker struct {
	file    string
	line    int
	summary string
}

func (m marker) String() string { return fmt.Sprintf("%s:%d: %s", m.file, m.line, m.summary) }

func readMarkers(t *testing.T, dir string) []marker {
	t.Helper()
	var out []marker
	files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			for {
				i := strings.Index(text, "# ERROR: ")
				if i < 0 {
					break
				}
				rest := text[i+len("# ERROR: "):]
				summary := rest
				if j := strings.Index(rest, " # ERROR: "); j >= 0 {
					summary = rest[:j]
				}
				out = append(out, marker{file: filepath.Base(f), line: line, summary: strings.TrimSpace(summary)})
				text = rest
			}
		}
		fh.Close()
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
			if filepath.Base(d.Subject.Filename) == m.file && d.Subject.Start.Line == m.line && d.Summary == m.summary {
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
