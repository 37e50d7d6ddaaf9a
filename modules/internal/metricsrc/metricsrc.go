// Package metricsrc queries a metric_source (a Prometheus server) for the
// observe node's metric blocks and the prometheus check probe, through
// Prometheus's own Go API client. Results are flattened to series named by
// their labels; errors never hold a header value, nor the url when it is
// sensitive.
//
// It imports only modules (and the Prometheus client libraries).
package metricsrc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/upgrader-dev/upgrader/modules"
)

// Client queries one metric source.
type Client struct {
	src *modules.MetricSource
	api v1.API
}

// transport is shared by every client: one connection pool per process, so
// a window's rounds reuse their keep-alive connections.
var transport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost:   16,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   5 * time.Second,
	ResponseHeaderTimeout: 0, // the per-query context bounds it
}

// headers adds the source's headers to every request.
type headers struct {
	h    map[string]string
	next http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.h) > 0 {
		r = r.Clone(r.Context())
		for k, v := range h.h {
			r.Header.Set(k, v)
		}
	}
	return h.next.RoundTrip(r)
}

// Open returns a client of src (no request yet).
func Open(src *modules.MetricSource) (*Client, error) {
	if src.Kind != "" && src.Kind != "prometheus" {
		return nil, fmt.Errorf("metric_source %q: unsupported kind %q", src.Name, src.Kind)
	}
	c, err := api.NewClient(api.Config{Address: src.URL, RoundTripper: headers{h: src.Headers, next: transport}})
	if err != nil {
		return nil, fmt.Errorf("metric_source %q: %s", src.Name, scrub(src, err.Error()))
	}
	return &Client{src: src, api: v1.NewAPI(c)}, nil
}

// Source is the client's metric source.
func (c *Client) Source() *modules.MetricSource { return c.src }

// Series is one element of a query's result.
type Series struct {
	Name  string  // its labels, "{code=\"500\", instance=\"a:8080\"}"; "{}" for a scalar or no labels
	Value float64 // may be NaN (0/0: no requests)
}

// Result is what a query returned.
type Result struct {
	Series   []Series // sorted by Name
	Warnings []string
}

// Error is a failed query. BadQuery: Prometheus refused the query itself
// (it does not parse, or names a bad function): asking again will not help.
type Error struct {
	Source   string
	BadQuery bool
	Msg      string
}

func (e *Error) Error() string {
	if e.BadQuery {
		return fmt.Sprintf("metric_source %q refused the query: %s", e.Source, e.Msg)
	}
	return fmt.Sprintf("metric_source %q: %s", e.Source, e.Msg)
}

// IsBadQuery reports whether err is a query Prometheus refused.
func IsBadQuery(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.BadQuery
}

// Query evaluates q at ts (zero: now), within the source's timeout.
func (c *Client) Query(ctx context.Context, q string, ts time.Time) (*Result, error) {
	if ts.IsZero() {
		ts = time.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, c.src.Timeout)
	defer cancel()
	v, warns, _, err := c.api.Query(ctx, q, ts, v1.WithTimeout(c.src.Timeout))
	if err != nil {
		return nil, c.explain(ctx, err)
	}
	return flatten(v, warns)
}

// Mean evaluates q over [from, to) every step and returns each series' mean
// (NaN points skipped; a series without a number is left out): a baseline.
func (c *Client) Mean(ctx context.Context, q string, from, to time.Time, step time.Duration) (*Result, error) {
	// Prometheus refuses more than 11,000 points per series.
	if n := to.Sub(from) / step; n > 10000 {
		step = to.Sub(from) / 10000
	}
	step = max(step, time.Second)
	ctx, cancel := context.WithTimeout(ctx, c.src.Timeout)
	defer cancel()
	v, warns, _, err := c.api.QueryRange(ctx, q, v1.Range{Start: from, End: to, Step: step}, v1.WithTimeout(c.src.Timeout))
	if err != nil {
		return nil, c.explain(ctx, err)
	}
	res := &Result{Warnings: warns}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, &Error{Source: c.src.Name, Msg: fmt.Sprintf("a range query returned a %s, not a matrix", v.Type())}
	}
	for _, s := range m {
		sum, n := 0.0, 0
		for _, p := range s.Values {
			if f := float64(p.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				sum += f
				n++
			}
		}
		if n > 0 {
			res.Series = append(res.Series, Series{Name: labels(s.Metric), Value: sum / float64(n)})
		}
	}
	sort.Slice(res.Series, func(i, j int) bool { return res.Series[i].Name < res.Series[j].Name })
	return res, nil
}

func flatten(v model.Value, warns v1.Warnings) (*Result, error) {
	res := &Result{Warnings: warns}
	switch v := v.(type) {
	case model.Vector:
		for _, s := range v {
			res.Series = append(res.Series, Series{Name: labels(s.Metric), Value: float64(s.Value)})
		}
	case *model.Scalar:
		res.Series = []Series{{Name: "{}", Value: float64(v.Value)}}
	case model.Matrix:
		return nil, fmt.Errorf("the query returns a range vector (a [duration] selector without a function): wrap it in rate(), avg_over_time(), ...")
	case *model.String:
		return nil, fmt.Errorf("the query returns a string, not a number")
	default:
		return nil, fmt.Errorf("the query returns %v, not a number", v.Type())
	}
	sort.Slice(res.Series, func(i, j int) bool { return res.Series[i].Name < res.Series[j].Name })
	return res, nil
}

// labels names a series the way PromQL writes it, __name__ first.
func labels(m model.Metric) string {
	if len(m) == 0 {
		return "{}"
	}
	var b strings.Builder
	if n, ok := m[model.MetricNameLabel]; ok {
		b.WriteString(string(n))
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if k != model.MetricNameLabel {
			names = append(names, string(k))
		}
	}
	sort.Strings(names)
	if len(names) == 0 && b.Len() > 0 {
		return b.String()
	}
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, string(m[model.LabelName(k)]))
	}
	b.WriteByte('}')
	return b.String()
}

// explain turns a client error into one line that says which failure it is.
func (c *Client) explain(ctx context.Context, err error) error {
	e := &Error{Source: c.src.Name}
	var ae *v1.Error
	switch {
	case errors.As(err, &ae) && ae.Type == v1.ErrBadData:
		e.BadQuery = true
		e.Msg = ae.Msg
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		e.Msg = fmt.Sprintf("no answer within %s (timeout)", c.src.Timeout)
	case errors.As(err, &ae):
		e.Msg = string(ae.Type) + ": " + ae.Msg
		if ae.Type == v1.ErrClient && (strings.Contains(ae.Msg, "401") || strings.Contains(ae.Msg, "403")) {
			e.Msg += " (are the headers right?)"
		}
	default:
		e.Msg = "not reachable: " + err.Error()
	}
	e.Msg = scrub(c.src, e.Msg)
	return e
}

// scrub removes the url (when sensitive) and every header value from msg.
func scrub(src *modules.MetricSource, msg string) string {
	if src.SensitiveURL && src.URL != "" {
		msg = strings.ReplaceAll(msg, src.URL, "(sensitive)")
		msg = strings.ReplaceAll(msg, strings.TrimRight(src.URL, "/"), "(sensitive)")
	}
	for _, v := range src.Headers {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "(sensitive)")
		}
	}
	return msg
}

// Shown is how a source is named in messages: its name and url.
func Shown(src *modules.MetricSource) string {
	if src.SensitiveURL {
		return fmt.Sprintf("metric_source %q ((sensitive))", src.Name)
	}
	return fmt.Sprintf("metric_source %q (%s)", src.Name, src.URL)
}

// Expect is a parsed `expect` of the prometheus probe: an operator and a
// number, met by every series of the result.
type Expect struct {
	Op    string // < <= > >= == !=
	Value float64
}

var expectRE = regexp.MustCompile(`^\s*(==|=|!=|>=|<=|>|<)\s*(\S+)\s*$`)

// ParseExpect parses "< 0.01", ">= 1", "== 0".
func ParseExpect(s string) (Expect, error) {
	m := expectRE.FindStringSubmatch(s)
	if m == nil {
		return Expect{}, fmt.Errorf("expect %q: write an operator and a number: \"< 0.01\", \"<= n\", \"> n\", \">= n\", \"== n\" or \"!= n\"", s)
	}
	f, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return Expect{}, fmt.Errorf("expect %q: %q is not a number", s, m[2])
	}
	op := m[1]
	if op == "=" {
		op = "=="
	}
	return Expect{Op: op, Value: f}, nil
}

func (e Expect) String() string { return e.Op + " " + Num(e.Value) }

// Match reports whether v meets the expectation (NaN never does).
func (e Expect) Match(v float64) bool {
	switch e.Op {
	case "<":
		return v < e.Value
	case "<=":
		return v <= e.Value
	case ">":
		return v > e.Value
	case ">=":
		return v >= e.Value
	case "==":
		return v == e.Value
	case "!=":
		return !math.IsNaN(v) && v != e.Value
	}
	return false
}

// Num formats a value for messages: up to 4 significant decimals.
func Num(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// Trim shortens a query for one-line messages.
func Trim(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 160 {
		return q[:157] + "..."
	}
	return q
}
