package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Geometry of the drawings, in SVG user units (the page scales them).
const (
	tlLabel  = 300 // timeline: label column
	tlWidth  = 1160
	tlRowH   = 20
	tlTop    = 34
	chWidth  = 560 // charts
	chHeight = 170
	chLeft   = 48
	chRight  = 12
	chTop    = 12
	chBottom = 26
)

// timelineSVG is the Gantt chart's geometry, ready for the template.
type timelineSVG struct {
	W, H      int
	Rows      []tlRow
	Ticks     []tick
	Marks     []tlMark
	UndoPath  string // through the undo bars, in undo order
	PhaseBand []band
}

type tlRow struct {
	Y, TextY  int
	Label     string
	Host      string
	Note      string
	State     string
	Run, Undo *rect
	GateX     float64 // a gate's decision; 0: none
	GateTitle string
	GatePts   string // the diamond drawn there
}

type rect struct {
	X, W  float64
	Y, H  int
	Class string
	Title string
}

type tick struct {
	X     float64
	Label string
}

type tlMark struct {
	X      float64
	Class  string
	Label  string
	LabelY int
	Y1, Y2 int
	Anchor string
	Kind   string
}

type band struct {
	Y, H  int
	Label string
	Odd   bool
}

func (r *Report) timelineSVG() *timelineSVG {
	t := &timelineSVG{W: tlWidth}
	span := r.End.Sub(r.Start)
	x := func(ts time.Time) float64 {
		f := float64(ts.Sub(r.Start)) / float64(span)
		return round1(tlLabel + f*float64(tlWidth-tlLabel-10))
	}
	y := tlTop
	phase, odd := "\x00", false
	for _, row := range r.Rows {
		if row.Phase != phase {
			phase, odd = row.Phase, !odd
			label := "phase " + row.Phase
			if row.Phase == "" {
				label = "outside any phase"
			}
			t.PhaseBand = append(t.PhaseBand, band{Y: y, Label: label, Odd: odd})
		}
		t.PhaseBand[len(t.PhaseBand)-1].H += tlRowH
		tr := tlRow{Y: y, TextY: y + 14, Label: row.Node, Host: row.Host, Note: row.Note, State: row.State}
		if row.Run != nil {
			tr.Run = barRect(row.Run, x, "bar state-"+row.Run.State, fmt.Sprintf("%s%s: %s, %s", row.Node, onHost(row.Host), row.Run.State, spanText(row.Run)))
			tr.Run.Y, tr.Run.H = y+3, 14
		}
		if row.Undo != nil {
			tr.Undo = barRect(row.Undo, x, "bar undo state-"+row.Undo.State, fmt.Sprintf("undo of %s%s: %s, %s", row.Node, onHost(row.Host), row.Undo.State, spanText(row.Undo)))
			tr.Undo.Y, tr.Undo.H = y+7, 9
		}
		for _, g := range r.Gates {
			if g.Node == row.Node && g.Decision != "" {
				tr.GateX = x(g.Decided)
				tr.GatePts = fmt.Sprintf("%g,%d %g,%d %g,%d %g,%d", tr.GateX, y+2, tr.GateX+6, y+10, tr.GateX, y+18, tr.GateX-6, y+10)
				tr.GateTitle = fmt.Sprintf("%s %s by %s at %s", g.Node, g.Decision, g.By, g.Decided.UTC().Format(time.RFC3339))
			}
		}
		t.Rows = append(t.Rows, tr)
		y += tlRowH
	}
	t.H = y + 8
	for _, tk := range ticks(r.Start, r.End) {
		t.Ticks = append(t.Ticks, tick{X: x(tk), Label: tickLabel(tk, span)})
	}
	for i, m := range r.Marks {
		if m.Kind == "approved" {
			continue // drawn on the gate's row
		}
		mk := tlMark{X: x(m.TS), Class: "mark mark-" + m.Kind, Label: m.Label, LabelY: 12 + 10*(i%2), Y1: tlTop - 6, Y2: t.H - 4, Anchor: "middle", Kind: m.Kind}
		if mk.X > tlWidth-160 { // keep the label inside the drawing
			mk.Anchor = "end"
		}
		t.Marks = append(t.Marks, mk)
	}
	// The rollback path: from each undone node's undo bar to the next one's.
	var pts []string
	for _, n := range r.UndoOrder {
		for _, tr := range t.Rows {
			if tr.Label == n && tr.Undo != nil {
				pts = append(pts, fmt.Sprintf("%g,%d", tr.Undo.X, tr.Y+10))
				break
			}
		}
	}
	if len(pts) > 1 {
		t.UndoPath = "M" + strings.Join(pts, " L")
	}
	return t
}

func onHost(h string) string {
	if h == "" {
		return ""
	}
	return " on " + h
}

func barRect(b *Bar, x func(time.Time) float64, class, title string) *rect {
	x0, x1 := x(b.Start), x(b.End)
	w := round1(x1 - x0)
	if w < 3 {
		w = 3 // instantaneous nodes (skipped, a quick check) stay visible
	}
	if b.Open {
		class += " open"
	}
	return &rect{X: x0, W: w, Class: class, Title: title}
}

func spanText(b *Bar) string {
	s := b.Start.UTC().Format("2006-01-02 15:04:05")
	if b.Open {
		return "since " + s + " (still going)"
	}
	return fmt.Sprintf("%s, %s", s, b.End.Sub(b.Start).Round(time.Millisecond))
}

// ticks returns 4 to 10 round instants between from and to.
func ticks(from, to time.Time) []time.Time {
	span := to.Sub(from)
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	var out []time.Time
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if !t.Before(from) {
			out = append(out, t)
		}
	}
	return out
}

func tickLabel(t time.Time, span time.Duration) string {
	switch {
	case span > 48*time.Hour:
		return t.UTC().Format("Jan 2 15:04")
	case span > 10*time.Minute:
		return t.UTC().Format("15:04")
	default:
		return t.UTC().Format("15:04:05")
	}
}

// chartSVG is one metric chart's geometry.
type chartSVG struct {
	W, H           int
	Title          string
	Path           string // the series, min and max of every bucket
	BoundY         float64
	HasBound       bool
	BoundLabel     string
	Breaches       []point
	Deciding       *point
	DecidingText   string
	YTicks         []tick
	XTicks         []tick
	PlotX0, PlotX1 float64
	PlotY0, PlotY1 float64
	Empty          bool
	Summary        string
}

type point struct {
	X, Y  float64
	Title string
}

func (w *Window) chartSVG(c *Chart) *chartSVG {
	g := &chartSVG{W: chWidth, H: chHeight, PlotX0: chLeft, PlotX1: chWidth - chRight, PlotY0: chTop, PlotY1: chHeight - chBottom}
	host := c.Host
	if host == "" {
		host = "all hosts"
	}
	g.Title = fmt.Sprintf("%s on %s", c.Metric, host)
	if strings.HasPrefix(c.Metric, "metric ") { // a Prometheus series: its labels, not a host
		g.Title = strings.TrimSpace(c.Metric + " " + c.Host)
	}
	if c.Samples == 0 {
		g.Empty = true
		return g
	}
	from, to := w.Started, w.End()
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	hi := c.Max
	if c.Bound != nil && *c.Bound > hi {
		hi = *c.Bound
	}
	lo := math.Min(0, c.Min)
	hi = niceCeil(hi * 1.1)
	if c.Unit == "%" && hi > 100 && c.Max <= 100 && (c.Bound == nil || *c.Bound <= 100) {
		hi = 100
	}
	if hi <= lo {
		hi = lo + 1
	}
	x := func(ts time.Time) float64 {
		f := float64(ts.Sub(from)) / float64(to.Sub(from))
		f = math.Max(0, math.Min(1, f))
		return round1(g.PlotX0 + f*(g.PlotX1-g.PlotX0))
	}
	y := func(v float64) float64 {
		return round1(g.PlotY1 - (v-lo)/(hi-lo)*(g.PlotY1-g.PlotY0))
	}
	var b strings.Builder
	first := true
	for _, bk := range c.Buckets {
		if bk.N == 0 {
			continue
		}
		pts := []Sample{{bk.MinT, bk.MinV}, {bk.MaxT, bk.MaxV}}
		if bk.MaxT.Before(bk.MinT) {
			pts[0], pts[1] = pts[1], pts[0]
		}
		if bk.N == 1 || pts[0] == pts[1] {
			pts = pts[:1]
		}
		for _, p := range pts {
			if first {
				b.WriteString("M")
				first = false
			} else {
				b.WriteString(" L")
			}
			fmt.Fprintf(&b, "%g,%g", x(p.TS), y(p.Value))
		}
		if bk.Over {
			g.Breaches = append(g.Breaches, point{X: x(bk.OverT), Y: y(bk.OverV),
				Title: fmt.Sprintf("above the bound at %s: %s", bk.OverT.UTC().Format(time.RFC3339), fmtVal(bk.OverV, c.Unit))})
		}
	}
	g.Path = b.String()
	if c.Bound != nil {
		g.HasBound, g.BoundY = true, y(*c.Bound)
		g.BoundLabel = "bound " + fmtVal(*c.Bound, c.Unit)
	}
	if d := c.Deciding; d != nil {
		g.Deciding = &point{X: x(d.TS), Y: y(d.Value)}
		g.DecidingText = fmt.Sprintf("deciding sample: %s on %s at %s = %s", c.Metric, host, d.TS.UTC().Format(time.RFC3339), fmtVal(d.Value, c.Unit))
		if c.Bound != nil {
			g.DecidingText += " (bound " + fmtVal(*c.Bound, c.Unit) + ")"
		}
		g.Deciding.Title = g.DecidingText
	}
	for _, v := range []float64{lo, (lo + hi) / 2, hi} {
		g.YTicks = append(g.YTicks, tick{X: y(v), Label: fmtNum(v)})
	}
	for _, tk := range ticks(from, to) {
		g.XTicks = append(g.XTicks, tick{X: x(tk), Label: tickLabel(tk, to.Sub(from))})
	}
	if len(g.XTicks) > 6 { // keep the labels apart on a small chart
		var keep []tick
		for i, tk := range g.XTicks {
			if i%2 == 0 {
				keep = append(keep, tk)
			}
		}
		g.XTicks = keep
	}
	g.Summary = fmt.Sprintf("%d samples, min %s, max %s", c.Samples, fmtVal(c.Min, c.Unit), fmtVal(c.Max, c.Unit))
	if c.Breaches > 0 {
		g.Summary += fmt.Sprintf(", %d above the bound", c.Breaches)
	}
	return g
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "%":
		return fmtNum(v) + "%"
	case "":
		return fmtNum(v)
	default:
		return fmtNum(v) + " " + unit
	}
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%d", int64(v))
	}
	if math.Abs(v) >= 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// niceCeil rounds up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
