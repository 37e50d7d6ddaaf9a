package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type app struct {
	s       settings
	started time.Time

	mu  sync.Mutex // serialises log lines
	log io.Writer

	dbMu sync.Mutex // one connection is plenty for a demo; requests take turns
	conn *pgx.Conn

	stopFault chan struct{}
	shedding  atomic.Bool   // the "shed" fault is on
	requests  atomic.Uint64 // served so far: the shed fault fails every 20th

	// What Prometheus scrapes at /metrics: requests by code, and latency.
	metrics  *prometheus.Registry
	reqs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newApp(s settings, log io.Writer) *app {
	a := &app{s: s, started: time.Now(), log: log, stopFault: make(chan struct{}), metrics: prometheus.NewRegistry()}
	a.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "app_http_requests_total", Help: "HTTP requests served, by method, path and status code.",
	}, []string{"method", "path", "code"})
	a.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "app_http_request_duration_seconds", Help: "HTTP request latency, by path.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"path"})
	a.metrics.MustRegister(a.reqs, a.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return a
}

func (a *app) close() {
	a.dbMu.Lock()
	defer a.dbMu.Unlock()
	if a.conn != nil {
		a.conn.Close(context.Background())
	}
}

func (a *app) logf(level, format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.log, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), level, fmt.Sprintf(format, args...))
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /api/ping", func(w http.ResponseWriter, r *http.Request) {
		if fault == "regression" {
			// The faulty build's regression: the API is broken, the rest works.
			http.Error(w, "internal error: ping handler broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "pong")
	})
	mux.HandleFunc("GET /items", a.items)
	mux.HandleFunc("POST /items", a.addItem)
	mux.HandleFunc("GET /admin", a.admin)
	metrics := promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{})
	logged := a.logged(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r) // scraped every few seconds: not logged, not counted
			return
		}
		logged.ServeHTTP(w, r)
	})
}

// knownPaths bound the path label: anything else is counted as "other".
var knownPaths = map[string]bool{"/version": true, "/health": true, "/api/ping": true, "/items": true, "/admin": true}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (a *app) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		n := a.requests.Add(1)
		if a.shedding.Load() && n%20 == 0 && r.URL.Path != "/health" {
			// The "shed" build's bug: its admission control refuses every
			// 20th request as if overloaded. Load shedding is logged as a
			// warning, so only the users (and the request metrics) see it.
			sw.Header().Set("Retry-After", "1")
			http.Error(sw, "overloaded, try again", http.StatusServiceUnavailable)
		} else {
			h.ServeHTTP(sw, r)
		}
		took := time.Since(start)
		path := r.URL.Path
		if !knownPaths[path] {
			path = "other"
		}
		a.reqs.WithLabelValues(r.Method, path, strconv.Itoa(sw.code)).Inc()
		a.duration.WithLabelValues(path).Observe(took.Seconds())
		level := "INFO"
		switch {
		case sw.code == http.StatusServiceUnavailable:
			level = "WARN"
		case sw.code >= 500:
			level = "ERROR"
		}
		a.logf(level, "%s %s %d %s", r.Method, r.URL.Path, sw.code, took.Round(time.Microsecond))
	})
}

// query runs q on the app's connection, connecting (again) when needed.
func (a *app) query(ctx context.Context, q string, args []any, scan func(pgx.Rows) error) error {
	a.dbMu.Lock()
	defer a.dbMu.Unlock()
	if a.s.DSN == "" {
		return errors.New("no database configured (dsn)")
	}
	if a.conn == nil || a.conn.IsClosed() {
		c, err := pgx.Connect(ctx, a.s.DSN)
		if err != nil {
			return err
		}
		a.conn = c
	}
	rows, err := a.conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type item struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Stock *int64 `json:"stock,omitempty"`
}

// major is the release's major version: 2.x reads the column 0002 adds.
func major() int {
	m, _, _ := strings.Cut(version, ".")
	n, _ := strconv.Atoi(m)
	return n
}

func (a *app) loadItems(ctx context.Context) ([]item, error) {
	q := "SELECT id, name FROM items ORDER BY id"
	if major() >= 2 {
		q = "SELECT id, name, stock FROM items ORDER BY id"
	}
	var out []item
	err := a.query(ctx, q, nil, func(rows pgx.Rows) error {
		var it item
		if major() >= 2 {
			var stock int64
			it.Stock = &stock
			if err := rows.Scan(&it.ID, &it.Name, &stock); err != nil {
				return err
			}
		} else if err := rows.Scan(&it.ID, &it.Name); err != nil {
			return err
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

func (a *app) items(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	items, err := a.loadItems(ctx)
	if err != nil {
		a.logf("ERROR", "items: %v", err)
		http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if items == nil {
		items = []item{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(items)
}

// addItem inserts an item (form value name). v1 writes the name only, so a
// schema that makes any other column mandatory breaks it: the kind of
// incompatibility the compatibility run of step 3.1 exists to catch.
func (a *app) addItem(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	name := r.FormValue("name")
	if name == "" {
		http.Error(w, "name is required", http.StatusBadRequest)
		return
	}
	q, args := "INSERT INTO items (name) VALUES ($1) RETURNING id", []any{name}
	if major() >= 2 {
		q, args = "INSERT INTO items (name, stock) VALUES ($1, $2) RETURNING id", []any{name, 0}
	}
	var id int64
	err := a.query(ctx, q, args, func(rows pgx.Rows) error { return rows.Scan(&id) })
	if err != nil {
		a.logf("ERROR", "add item: %v", err)
		http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "created %d\n", id)
}

var adminPage = template.Must(template.New("admin").Parse(`<!doctype html>
<title>app admin</title>
<h1>app admin</h1>
<p>version {{.Version}}, up {{.Uptime}}</p>
<p>items in database: {{.Items}}</p>
`))

func (a *app) admin(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	items, err := a.loadItems(ctx)
	if err != nil {
		a.logf("ERROR", "admin: %v", err)
		http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	adminPage.Execute(w, map[string]any{
		"Version": version,
		"Uptime":  time.Since(a.started).Round(time.Second),
		"Items":   len(items),
	})
}

// serve listens until ctx ends, then drains in-flight requests.
func (a *app) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.s.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	a.logf("INFO", "app %s listening on %s", version, ln.Addr())
	if err := a.startFault(); err != nil {
		ln.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	close(a.stopFault)
	a.logf("INFO", "app %s stopping", version)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// startFault arms the build's fault, if any: after faultAfter, the "errors"
// build writes an ERROR line every second and the "cpu" build busy-loops on
// every core, as a bad release would.
func (a *app) startFault() error {
	switch fault {
	case "", "regression":
		return nil
	case "errors", "cpu", "shed":
	default:
		return fmt.Errorf("unknown fault %q built in", fault)
	}
	after, err := time.ParseDuration(faultAfter)
	if err != nil {
		return fmt.Errorf("fault delay %q: %w", faultAfter, err)
	}
	go func() {
		select {
		case <-time.After(after):
		case <-a.stopFault:
			return
		}
		if fault == "shed" {
			a.shedding.Store(true)
			return
		}
		if fault == "cpu" {
			for i := 0; i < runtime.NumCPU(); i++ {
				go burn(a.stopFault)
			}
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for n := 1; ; n++ {
			a.logf("ERROR", "order sync failed: connection pool exhausted (%d)", n)
			select {
			case <-t.C:
			case <-a.stopFault:
				return
			}
		}
	}()
	return nil
}

func burn(stop <-chan struct{}) {
	x := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		_ = x
	}
}

// checkConfig is what -check (step 5 of the procedure) verifies: the config
// file names this binary's version, and the database has what it reads.
func checkConfig(ctx context.Context, s settings) error {
	if s.Version != "" && s.Version != version {
		return fmt.Errorf("config is for version %s, binary is %s", s.Version, version)
	}
	a := newApp(s, io.Discard)
	defer a.close()
	if _, err := a.loadItems(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
