// Package views renders what upgrader shows: plans, live progress, run
// summaries and status, for humans (colors when on a terminal) and as JSON
// lines for machines (docs/JSON.md). It never decides anything.
package views

import (
	"os"

	"golang.org/x/term"
)

// Style colors text, or not.
type Style struct{ Color bool }

// NewStyle colors only when f is a terminal and noColor is not set.
func NewStyle(f *os.File, noColor bool) Style {
	return Style{Color: !noColor && IsTerminal(f) && os.Getenv("NO_COLOR") == ""}
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

func (s Style) wrap(code, text string) string {
	if !s.Color || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s Style) Bold(t string) string   { return s.wrap("1", t) }
func (s Style) Dim(t string) string    { return s.wrap("2", t) }
func (s Style) Red(t string) string    { return s.wrap("31", t) }
func (s Style) Green(t string) string  { return s.wrap("32", t) }
func (s Style) Yellow(t string) string { return s.wrap("33", t) }
func (s Style) Cyan(t string) string   { return s.wrap("36", t) }

// Marker colors a plan change marker (+ ~ = ! s - r).
func (s Style) Marker(m string) string {
	switch m {
	case "+":
		return s.Green(m)
	case "~":
		return s.Yellow(m)
	case "-":
		return s.Red(m)
	case "!":
		return s.Cyan(m)
	case "=", "s", "r":
		return s.Dim(m)
	}
	return m
}
