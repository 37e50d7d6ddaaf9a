package httpcheck

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

func TestHTTP_validate(t *testing.T) {
	modtest.RunValidateCases(t, "testdata/validate/*.hcl", &HTTP{})
}

// handler is the local server the check cases talk to.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "pong") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "down for maintenance\n")
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok","version":"2.4.0","count":3,"ratio":0.5,
			"checks":[{"name":"db","healthy":true},{"name":"cache","healthy":false}],
			"meta":{"region":"eu","replicas":[1,2.0]}}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Token"), b)
	})
	return mux
}

// TestHTTP_check runs each testdata/check case against local servers (plain
// and TLS); the first line says "# want: pass" or the error text expected.
func TestHTTP_check(t *testing.T) {
	plain := httptest.NewServer(handler())
	defer plain.Close()
	secure := httptest.NewUnstartedServer(handler())
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA case makes it log
	secure.StartTLS()
	defer secure.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"server": cty.ObjectVal(map[string]cty.Value{
		"url": cty.StringVal(plain.URL), "tls_url": cty.StringVal(secure.URL),
		"ca_file": cty.StringVal(caFile), "closed_url": cty.StringVal(closed),
	}), "secret": cty.StringVal("hunter2").Mark(modtest.SensitiveMark)}}
	files, _ := filepath.Glob("testdata/check/*.hcl")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(strings.NewReader(string(src))).ReadString('\n')
			want, ok := strings.CutPrefix(strings.TrimSpace(first), "# want: ")
			if !ok {
				t.Fatal("first line must be `# want: pass` or `# want: ERROR TEXT`")
			}
			want = strings.ReplaceAll(want, "URL", plain.URL)
			m := &HTTP{}
			cfg, ds := modtest.DecodeBlock(file, src, m.Spec(), ctx, dir)
			if ds.HasErrors() {
				t.Fatal(ds)
			}
			if ds := m.Validate(cfg); ds.HasErrors() {
				t.Fatal(ds)
			}
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = m.Check(cctx, &modules.Request{Config: cfg, Node: "check.test", Index: -1, Env: &modtest.Env{ID: "run1"}})
			switch {
			case want == "pass" && err != nil:
				t.Fatalf("check failed: %v", err)
			case want != "pass" && err == nil:
				t.Fatalf("check passed, want an error containing %q", want)
			case want != "pass" && !strings.Contains(err.Error(), want):
				t.Fatalf("error %q\nwant it to contain %q", err, want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows a sensitive value: %v", err)
			}
		})
	}
}

// A check is one attempt bounded by ctx: a server that never answers ends at the deadline.
func TestHTTP_checkTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	src := []byte(`http { url = "` + srv.URL + `" }`)
	cfg, ds := modtest.DecodeBlock("t.hcl", src, (&HTTP{}).Spec(), nil, ".")
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&HTTP{}).Check(ctx, &modules.Request{Config: cfg, Env: &modtest.Env{}})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("check took %v", time.Since(start))
	}
}
