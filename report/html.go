package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"bytes": humanBytes,
	"secs": func(s float64) string {
		return (time.Duration(s*10) * time.Second / 10).Round(100 * time.Millisecond).String()
	},
	"deref":  func(b *bool) bool { return b != nil && *b },
	"change": changeClass,
	"lines":  func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
	"short": func(s string) string {
		if len(s) > 16 {
			return s[:16]
		}
		return s
	},
}).Parse(pageText))

// view is what the template receives.
type view struct {
	*Report
	Duration string
	Timeline *timelineSVG
	Windows  []windowView
	Failed   string
}

type windowView struct {
	*Window
	Charts []*chartSVG
	Span   string
}

// HTML writes the report as one self-contained page.
func (r *Report) HTML(w io.Writer) error {
	v := view{Report: r, Timeline: r.timelineSVG()}
	end := r.Status.Finished
	if end.IsZero() {
		end = r.Generated
	}
	if !r.Status.Started.IsZero() {
		v.Duration = end.Sub(r.Status.Started).Round(time.Second).String()
	}
	for _, ns := range r.Status.Nodes {
		if ns.State == "failed" || (ns.Error != "" && v.Failed == "") {
			v.Failed = ns.Node
		}
	}
	for _, win := range r.Windows {
		wv := windowView{Window: win, Span: fmt.Sprintf("%s to %s", win.Started.UTC().Format(time.RFC3339), win.End().UTC().Format(time.RFC3339))}
		for _, c := range win.Charts {
			wv.Charts = append(wv.Charts, win.chartSVG(c))
		}
		v.Windows = append(v.Windows, wv)
	}
	return page.Execute(w, v)
}

// Write renders the report of one run to path (atomically); path "" means
// runs/RUN/report.html.
func Write(in Input, path string) (string, error) {
	rep, err := Build(in)
	if err != nil {
		return "", err
	}
	if path == "" {
		path = filepath.Join(journal.RunDir(in.StateDir, in.Run), FileName)
	}
	var b bytes.Buffer
	if err := rep.HTML(&b); err != nil {
		return "", err
	}
	return path, writeAtomic(path, b.Bytes())
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func changeClass(c string) string {
	switch c {
	case "+":
		return "ch-add"
	case "~":
		return "ch-change"
	case "-":
		return "ch-del"
	case "!":
		return "ch-run"
	default:
		return "ch-none"
	}
}
