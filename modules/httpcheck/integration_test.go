package httpcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The http probe against a real HTTP server on a test host, over the
// host's own address: status, body, JSON, and a failure that says what came
// back; then the server stops and the check says so.
func TestHTTP_realHost(t *testing.T) {
	bed := testbed.New(t, "web")
	h := bed.Host("web")
	_, err := h.Exec(t.Context(), `mkdir -p /opt/www/api && printf '{"status":"ok","version":"2.4.0","checks":[{"name":"db","ok":true}]}' > /opt/www/api/health &&
cd /opt/www && setsid /usr/bin/python3 -m http.server 8080 --bind `+h.Address+` >/dev/null 2>&1 </dev/null & echo $! > /opt/www.pid
for i in $(seq 100); do curl -fs -o /dev/null http://`+h.Address+`:8080/api/health && exit 0; sleep 0.05; done; exit 1`)
	if err != nil {
		t.Fatal(err)
	}
	stop := func() { h.Exec(context.Background(), "kill $(cat /opt/www.pid) 2>/dev/null; sleep 0.2; true") }
	t.Cleanup(stop)
	scope := &hcl.EvalContext{Variables: map[string]cty.Value{"addr": cty.StringVal(h.Address)}}
	cases := []struct{ body, want string }{
		{`url = "http://${addr}:8080/api/health"
  expect_json = { status = "ok", "checks.0.ok" = true, version = "2.4.0" }`, ""},
		{`url = "http://${addr}:8080/api/health"
  expect_body_regex = "\"version\":\"2\\.4\\.[0-9]+\""`, ""},
		{`url = "http://${addr}:8080/api/health"
  expect_json = { version = "2.5.0" }`, `expected JSON version = "2.5.0", got "2.4.0"`},
		{`url = "http://${addr}:8080/missing"`, "expected status 200, got 404"},
	}
	check := func(body string) error {
		m := &HTTP{}
		cfg, ds := modtest.DecodeBlock("t.hcl", []byte("http {\n  "+body+"\n}\n"), m.Spec(), scope, ".")
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return m.Check(ctx, &modules.Request{Config: cfg, Node: "check.health", Index: -1, Env: &modtest.Env{}})
	}
	for _, c := range cases {
		err := check(c.body)
		if c.want == "" && err != nil {
			t.Errorf("%s: %v", c.body, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: err = %v, want %q", c.body, err, c.want)
		}
	}
	stop()
	if err := check(cases[0].body); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("with the server stopped: err = %v, want connection refused", err)
	}
}
