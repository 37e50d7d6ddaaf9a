// Package testprom runs a private Prometheus server for tests: Debian's
// prometheus binary on 127.0.0.1 and a free port, with its own scrape
// configuration (a short scrape interval), data in a temporary directory.
// The server is this process's child (it dies with it: Pdeathsig), and
// Stop, or the test's cleanup, kills only that pid and removes the directory.
//
// It is for tests only.
package testprom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bin is the Prometheus server binary (Debian's prometheus package).
var Bin = "/usr/bin/prometheus"

// Options of a server.
type Options struct {
	// Targets are scraped as job "app" ("198.51.100.3:8080", "127.0.0.1:4242").
	Targets []string
	// ScrapeInterval defaults to 1s.
	ScrapeInterval time.Duration
	// Dir holds the server's data, config and log; "" for a new temporary one.
	Dir string
	// Listen is the address to serve on; "" for 127.0.0.1 and a free port.
	Listen string
	// Prefix runs the server through a command (["ip", "netns", "exec",
	// "ugtb3"]: on a test host's network) that execs it in place.
	Prefix []string
	// Detached: the server outlives this process (its own session, no
	// Pdeathsig); whoever owns its network namespace ends it.
	Detached bool
}

// Server is a running Prometheus.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	Dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	ownDir  bool
	stopped bool
}

// Missing says why no server can be started here ("" when one can).
func Missing() string {
	if _, err := os.Stat(Bin); err != nil {
		return fmt.Sprintf("testprom: %s not found (install Debian's prometheus package: scripts/setup-debian.sh)", Bin)
	}
	return ""
}

// New starts a server for one test and stops it at the test's cleanup. It
// skips the test when Prometheus is not installed (fails under CI=true).
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if msg := Missing(); msg != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Start starts a server and waits until it is ready.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if msg := Missing(); msg != "" {
		return nil, errors.New(msg)
	}
	s := &Server{Dir: opts.Dir}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "upgrader-testprom-")
		if err != nil {
			return nil, err
		}
		s.Dir, s.ownDir = d, true
	}
	interval := opts.ScrapeInterval
	if interval <= 0 {
		interval = time.Second
	}
	var targets []string
	for _, t := range opts.Targets {
		targets = append(targets, fmt.Sprintf("%q", t))
	}
	// scrape_timeout may not exceed the interval.
	conf := fmt.Sprintf("global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [%s]\n",
		promDuration(interval), promDuration(interval), promDuration(interval), strings.Join(targets, ", "))
	confPath := filepath.Join(s.Dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		s.cleanup()
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s.Addr = opts.Listen
		if s.Addr == "" {
			port, err := freePort()
			if err != nil {
				s.cleanup()
				return nil, err
			}
			s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		s.URL = "http://" + s.Addr
		if lastErr = s.start(ctx, confPath, opts); lastErr == nil {
			return s, nil
		}
		if opts.Listen != "" {
			break // a fixed address will not be freer next time
		}
	}
	s.cleanup()
	return nil, lastErr
}

func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(ctx context.Context, confPath string, opts Options) error {
	logPath := filepath.Join(s.Dir, "prometheus.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append(append([]string(nil), opts.Prefix...), Bin,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(s.Dir, "data"),
		"--web.listen-address="+s.Addr,
		"--storage.tsdb.retention.time=1d",
		"--web.console.templates=/nonexistent", "--web.console.libraries=/nonexistent",
	)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if opts.Detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testprom: start %s: %w", Bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-exited:
			logs, _ := os.ReadFile(logPath)
			return fmt.Errorf("testprom: prometheus exited before it was ready:\n%s", tailLines(string(logs), 20))
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("testprom: prometheus not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// kill stops the server's process (ours: the pid we started) and waits.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot handle SIGTERM
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Down stops the server (its data stays): queries are refused.
func (s *Server) Down() { s.kill() }

// Pause stops the server's process (SIGSTOP): connections are accepted by
// the kernel but never answered, as with a hung server. Resume continues it.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("testprom: server not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Stop stops the server and removes its directory (when testprom made it).
func (s *Server) Stop() error {
	s.kill()
	s.cleanup()
	return nil
}

func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ownDir && !s.stopped {
		s.stopped = true
		_ = os.RemoveAll(s.Dir)
	}
}

// WaitScraped waits until every target has been scraped successfully at
// least n times (up == 1), so queries over them have data.
func (s *Server) WaitScraped(ctx context.Context, targets []string, n int) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		ok := true
		for _, t := range targets {
			q := fmt.Sprintf(`count_over_time(up{instance=%q}[1h]) >= %d and up{instance=%q} == 1`, t, n, t)
			resp, err := hc.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape(q))
			if err != nil {
				ok = false
				break
			}
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				k, err := resp.Body.Read(buf)
				b.Write(buf[:k])
				if err != nil {
					break
				}
			}
			resp.Body.Close()
			if !strings.Contains(b.String(), `"value"`) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testprom: targets %v not scraped %d times: %w", targets, n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Pid is the server's process id (0 when it is not running).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Exporter serves reg's metrics on 127.0.0.1 (a free port) for a private
// Prometheus to scrape, until the test ends; it returns host:port.
func Exporter(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
