// Package httpcheck is the `http` probe of a check: one HTTP request from
// the controller, passing on the expected status, body substring, body
// regex and JSON values. TLS is verified unless insecure_skip_verify is set.
// One attempt per call: retries, interval and timeout belong to the executor.
// It imports only modules and lang/diags.
package httpcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// MaxBody bounds how much of a response is read.
const MaxBody = 1 << 20

// HTTP is the http probe.
type HTTP struct{}

var (
	_ modules.Probe      = (*HTTP)(nil)
	_ modules.Validator  = (*HTTP)(nil)
	_ modules.Repeatable = (*HTTP)(nil)
	_ modules.Describer  = (*HTTP)(nil)
)

func (*HTTP) Kind() string { return "http" }

// Describe: the offline plan shows these arguments.
func (*HTTP) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"url"}}
}

// Safe: the check may be repeated on resume (the request is the user's to
// keep harmless; a POST check is usually a smoke write, still repeatable).
func (*HTTP) Safe(*modules.Config) bool { return true }

func (*HTTP) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"url":                  &hcldec.AttrSpec{Name: "url", Type: cty.String, Required: true},
		"method":               &hcldec.AttrSpec{Name: "method", Type: cty.String},
		"headers":              &hcldec.AttrSpec{Name: "headers", Type: cty.Map(cty.String)},
		"body":                 &hcldec.AttrSpec{Name: "body", Type: cty.String},
		"expect_status":        &hcldec.AttrSpec{Name: "expect_status", Type: cty.Number},
		"expect_body":          &hcldec.AttrSpec{Name: "expect_body", Type: cty.String},
		"expect_body_regex":    &hcldec.AttrSpec{Name: "expect_body_regex", Type: cty.String},
		"expect_json":          &hcldec.AttrSpec{Name: "expect_json", Type: cty.DynamicPseudoType},
		"ca_file":              &hcldec.AttrSpec{Name: "ca_file", Type: cty.String},
		"insecure_skip_verify": &hcldec.AttrSpec{Name: "insecure_skip_verify", Type: cty.Bool},
	}
}

var methodRE = regexp.MustCompile(`^[A-Z]+$`)

func (*HTTP) Validate(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if u := modules.GetString(v, "url"); u != "" {
		if _, err := parseURL(u); err != nil {
			ds = append(ds, diags.At(*cfg.Range("url"), "Invalid URL", err.Error()))
		}
	}
	if m := modules.GetString(v, "method"); m != "" && !methodRE.MatchString(m) {
		ds = append(ds, diags.At(*cfg.Range("method"), "Invalid method", fmt.Sprintf("method %q must be an HTTP method in capitals, like GET or POST.", m)))
	}
	if s := modules.Get(v, "expect_status"); s.IsKnown() && !s.IsNull() {
		if n, acc := s.AsBigFloat().Int64(); !s.AsBigFloat().IsInt() || acc != big.Exact || n < 100 || n > 599 {
			ds = append(ds, diags.At(*cfg.Range("expect_status"), "Invalid expect_status", "expect_status must be an HTTP status code from 100 to 599."))
		}
	}
	if re := modules.GetString(v, "expect_body_regex"); re != "" {
		if _, err := regexp.Compile(re); err != nil {
			ds = append(ds, diags.At(*cfg.Range("expect_body_regex"), "Invalid expect_body_regex", err.Error()))
		}
	}
	if j := modules.Get(v, "expect_json"); j.IsKnown() && !j.IsNull() && !j.Type().IsObjectType() && !j.Type().IsMapType() {
		ds = append(ds, diags.At(*cfg.Range("expect_json"), "Invalid expect_json",
			`expect_json maps paths to values, like { "status" = "ok", "checks.0.healthy" = true }.`))
	}
	if ca := modules.GetString(v, "ca_file"); ca != "" {
		if _, err := loadCA(cfg, ca); err != nil {
			ds = append(ds, diags.At(*cfg.Range("ca_file"), "Invalid ca_file", err.Error()))
		}
	}
	return ds
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	return u, nil
}

func loadCA(cfg *modules.Config, p string) (*x509.CertPool, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(cfg.Dir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", p)
	}
	return pool, nil
}

// Check sends the request once, bounded by ctx.
func (*HTTP) Check(ctx context.Context, req *modules.Request) error {
	cfg := req.Config
	v := cfg.Value
	rawURL := modules.GetString(v, "url")
	if _, err := parseURL(rawURL); err != nil {
		return err
	}
	method := modules.GetString(v, "method")
	if method == "" {
		method = http.MethodGet
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: modules.GetBool(v, "insecure_skip_verify", false)}
	if ca := modules.GetString(v, "ca_file"); ca != "" {
		pool, err := loadCA(cfg, ca)
		if err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	// No proxy from the environment: a check must reach the address it names.
	tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var body io.Reader
	if b := modules.GetString(v, "body"); b != "" {
		body = strings.NewReader(b)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return err
	}
	for k, val := range modules.GetStringMap(v, "headers") {
		if strings.EqualFold(k, "Host") {
			hreq.Host = val
		} else {
			hreq.Header.Set(k, val)
		}
	}
	what := method + " " + modules.Shown(v, "url")
	resp, err := client.Do(hreq)
	if err != nil {
		var ue *url.Error
		if modules.Sensitive(v, "url") && errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("%s: reading the response: %w", what, err)
	}
	wantStatus := modules.GetInt(v, "expect_status", http.StatusOK)
	if resp.StatusCode != wantStatus {
		return fmt.Errorf("%s: expected status %d, got %d; body: %s", what, wantStatus, resp.StatusCode, Trim(got))
	}
	if s := modules.GetString(v, "expect_body"); s != "" && !bytes.Contains(got, []byte(s)) {
		return fmt.Errorf("%s: expected the body to contain %q, got: %s", what, modules.Shown(v, "expect_body"), Trim(got))
	}
	if s := modules.GetString(v, "expect_body_regex"); s != "" {
		re, err := regexp.Compile(s)
		if err != nil {
			return err
		}
		if !re.Match(got) {
			return fmt.Errorf("%s: expected the body to match /%s/, got: %s", what, s, Trim(got))
		}
	}
	if j := modules.Get(v, "expect_json"); !j.IsNull() && j.IsKnown() {
		if err := checkJSON(j, got); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
	}
	return nil
}

// checkJSON compares each expected path (a.b.0.c) with the decoded body.
func checkJSON(want cty.Value, body []byte) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("expected a JSON body, got: %s", Trim(body))
	}
	want, _ = want.UnmarkDeep()
	type pair struct {
		path string
		val  cty.Value
	}
	var pairs []pair
	for it := want.ElementIterator(); it.Next(); {
		k, e := it.Element()
		pairs = append(pairs, pair{k.AsString(), e})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].path < pairs[j].path })
	for _, p := range pairs {
		got, ok := lookup(doc, p.path)
		wj, err := ctyjson.Marshal(p.val, p.val.Type())
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("expected JSON %s = %s, but the path is missing in: %s", p.path, wj, Trim(body))
		}
		var w any
		d := json.NewDecoder(bytes.NewReader(wj))
		d.UseNumber()
		_ = d.Decode(&w)
		if !jsonEqual(w, got) {
			gj, _ := json.Marshal(got)
			if len(gj) > 300 {
				gj = append(gj[:300], " [...]"...)
			}
			return fmt.Errorf("expected JSON %s = %s, got %s", p.path, wj, gj)
		}
	}
	return nil
}

// lookup walks a path like "a.b.0.c": object keys and array indexes.
func lookup(doc any, p string) (any, bool) {
	cur := doc
	for _, seg := range strings.Split(p, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// jsonEqual compares decoded JSON; numbers by value, and a wanted string
// matches a number or bool with that text (HCL maps often hold strings).
func jsonEqual(want, got any) bool {
	switch w := want.(type) {
	case json.Number:
		g, ok := got.(json.Number)
		return ok && numEqual(w, g)
	case string:
		switch g := got.(type) {
		case string:
			return w == g
		case json.Number:
			return numEqual(json.Number(w), g)
		case bool:
			return w == strconv.FormatBool(g)
		}
		return false
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			if !jsonEqual(wv, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !jsonEqual(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return want == got
}

func numEqual(a, b json.Number) bool {
	x, ok1 := new(big.Float).SetString(string(a))
	y, ok2 := new(big.Float).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

// Trim shortens a body for a failure message.
func Trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	if len(s) > 300 {
		s = s[:300] + " [...]"
	}
	return strconv.Quote(s)
}
