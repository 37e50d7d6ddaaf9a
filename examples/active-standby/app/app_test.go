package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink the fault goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setBuild sets the build-time variables for one test.
func setBuild(t *testing.T, v, f, after string) {
	ov, of, oa := version, fault, faultAfter
	version, fault, faultAfter = v, f, after
	t.Cleanup(func() { version, fault, faultAfter = ov, of, oa })
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestApp_endpoints(t *testing.T) {
	setBuild(t, "2.0.0", "", "15s")
	var log syncBuffer
	a := newApp(settings{}, &log)
	h := a.handler()
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/version", 200, "2.0.0\n"},
		{"/health", 200, "ok\n"},
		{"/api/ping", 200, "pong\n"},
		{"/items", 500, "database error: no database configured (dsn)\n"},
		{"/nope", 404, "404 page not found\n"},
	} {
		code, body := get(t, h, tc.path)
		if code != tc.code || body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	logged := log.String()
	for _, want := range []string{" INFO GET /version 200 ", " ERROR GET /items 500 ", " INFO GET /nope 404 "} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
}

func TestApp_regressionFault(t *testing.T) {
	setBuild(t, "2.0.0", "regression", "15s")
	h := newApp(settings{}, io.Discard).handler()
	if code, _ := get(t, h, "/api/ping"); code != 500 {
		t.Errorf("faulty /api/ping = %d, want 500", code)
	}
	if code, body := get(t, h, "/version"); code != 200 || body != "2.0.0\n" {
		t.Errorf("faulty /version = %d %q: the regression must hit the API only", code, body)
	}
}

func TestApp_errorsFault(t *testing.T) {
	setBuild(t, "2.0.0", "errors", "50ms")
	var log syncBuffer
	a := newApp(settings{Listen: "127.0.0.1:0"}, &log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), " ERROR order sync failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no ERROR line 20s after a 50ms fault delay:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestApp_unknownFault(t *testing.T) {
	setBuild(t, "2.0.0", "typo", "1s")
	a := newApp(settings{Listen: "127.0.0.1:0"}, io.Discard)
	if err := a.serve(context.Background()); err == nil || !strings.Contains(err.Error(), `unknown fault "typo"`) {
		t.Fatalf("serve = %v, want unknown fault", err)
	}
}

func TestResolve_precedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	os.WriteFile(conf, []byte("# comment\nversion = 2.0.0\nlisten=:9000\ndsn=postgres://file\n"), 0o644)
	t.Setenv("APP_LISTEN", "")
	t.Setenv("APP_DSN", "postgres://env")
	t.Setenv("APP_LOG", "")
	s, err := resolve(conf, settings{Log: "/tmp/flag.log"})
	if err != nil {
		t.Fatal(err)
	}
	want := settings{Listen: ":9000", DSN: "postgres://env", Log: "/tmp/flag.log", Version: "2.0.0"}
	if s != want {
		t.Errorf("resolve = %+v, want %+v", s, want)
	}
	os.WriteFile(conf, []byte("listen :9000\n"), 0o644)
	if _, err := resolve(conf, settings{}); err == nil || !strings.Contains(err.Error(), "line 1: want key=value") {
		t.Errorf("bad config: err = %v", err)
	}
}

// TestStartScript runs bin/start as the release module's activate would:
// start, restart (a new pid, still healthy), stop.
func TestStartScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	release := filepath.Join(dir, "releases", "1.0.0")
	os.MkdirAll(filepath.Join(release, "bin"), 0o755)
	build := exec.Command("go", "build", "-ldflags", "-X main.version=1.0.0", "-o", filepath.Join(release, "bin", "app"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	script, _ := os.ReadFile("bin/start")
	os.WriteFile(filepath.Join(release, "bin", "start"), script, 0o755)
	os.Symlink(release, filepath.Join(dir, "current"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "app.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listen=%s\nlog=%s/app.log\n", addr, dir)), 0o644)
	start := func(arg string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "current", "bin", "start"), arg)
		cmd.Env = append(os.Environ(), "APP_CONFIG="+conf, "APP_RUN_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil && arg != "status" {
			t.Fatalf("start %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { start("stop") })

	if out := start("start"); !strings.Contains(out, "app 1.0.0 running") {
		t.Fatalf("start: %s", out)
	}
	pid1, _ := os.ReadFile(filepath.Join(dir, "app.pid"))
	start("restart")
	pid2, _ := os.ReadFile(filepath.Join(dir, "app.pid"))
	if bytes.Equal(pid1, pid2) {
		t.Errorf("restart kept pid %s", pid1)
	}
	resp, err := http.Get("http://" + addr + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "1.0.0\n" {
		t.Errorf("/version = %q", body)
	}

	// A restore replaces the release the running app came from: its exe is
	// "(deleted)". restart must still stop it, or the new app cannot bind.
	copyDir(t, release, release+"b")
	os.Remove(filepath.Join(dir, "current"))
	os.Symlink(release+"b", filepath.Join(dir, "current"))
	os.RemoveAll(release)
	start("restart")
	pid3, _ := os.ReadFile(filepath.Join(dir, "app.pid"))
	if bytes.Equal(pid2, pid3) {
		t.Errorf("restart after the release was removed kept the old process %s", pid2)
	}
	if exe, _ := os.Readlink("/proc/" + strings.TrimSpace(string(pid3)) + "/exe"); !strings.HasSuffix(exe, "1.0.0b/bin/app") {
		t.Errorf("the running app is %q, want the new release's", exe)
	}

	start("stop")
	if out := start("status"); !strings.Contains(out, "stopped") {
		t.Errorf("status after stop: %s", out)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestApp_cpuFault: the "cpu" build busy-loops after its delay, and stops
// when the app stops.
func TestApp_cpuFault(t *testing.T) {
	setBuild(t, "2.0.0", "cpu", "10ms")
	a := newApp(settings{Listen: "127.0.0.1:0"}, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	before := cpuTime()
	go func() { done <- a.serve(ctx) }()
	// Idle, the app uses next to no CPU; the fault burns it. Poll rather than
	// time it: other processes share the cores.
	deadline := time.Now().Add(10 * time.Second)
	for cpuTime()-before < time.Second && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	used := cpuTime() - before
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if used < time.Second {
		t.Errorf("the cpu fault used only %v of CPU in 10s", used)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestApp_metrics: /metrics counts requests by method, path and code, and
// their latency, in Prometheus's text format; it does not count itself.
func TestApp_metrics(t *testing.T) {
	setBuild(t, "2.0.0", "", "15s")
	h := newApp(settings{}, io.Discard).handler()
	get(t, h, "/version")
	get(t, h, "/version")
	get(t, h, "/nope")
	get(t, h, "/items") // 500: no database
	_, body := get(t, h, "/metrics")
	for _, want := range []string{
		`app_http_requests_total{code="200",method="GET",path="/version"} 2`,
		`app_http_requests_total{code="404",method="GET",path="other"} 1`,
		`app_http_requests_total{code="500",method="GET",path="/items"} 1`,
		`app_http_request_duration_seconds_count{path="/version"} 2`,
		`app_http_request_duration_seconds_bucket{path="/version",le="+Inf"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `path="/metrics"`) {
		t.Error("/metrics counts itself")
	}
}

// TestApp_shedFault: once armed, the shed build refuses every 20th request
// with 503 (logged as WARN, never ERROR); /health always answers.
func TestApp_shedFault(t *testing.T) {
	setBuild(t, "2.0.0", "shed", "15s")
	var log syncBuffer
	a := newApp(settings{}, &log)
	h := a.handler()
	a.shedding.Store(true)
	codes := map[int]int{}
	for i := 0; i < 100; i++ {
		c, _ := get(t, h, "/version")
		codes[c]++
	}
	if codes[503] != 5 || codes[200] != 95 {
		t.Errorf("codes %v, want 5 x 503 and 95 x 200", codes)
	}
	for i := 0; i < 10; i++ {
		if c, _ := get(t, h, "/health"); c != 200 {
			t.Fatalf("/health = %d while shedding", c)
		}
	}
	if l := log.String(); strings.Contains(l, " ERROR ") || !strings.Contains(l, " WARN GET /version 503 ") {
		t.Errorf("log: want WARN lines and no ERROR:\n%.500s", l)
	}
}
