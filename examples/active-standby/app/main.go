// Command app is the demo service of examples/active-standby: a tiny web
// service with a version, a health endpoint, an API, a page that reads from
// PostgreSQL, an admin page, and a log file that every request is written to.
//
// Its version and an optional fault are baked in at build time
// (build.sh: -ldflags "-X main.version=2.0.0 -X main.fault=errors"), so the
// example can roll out a release that misbehaves the way real ones do.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Set at build time with -ldflags -X.
var (
	version    = "0.0.0-dev"
	fault      = ""    // "", "regression", "errors", "cpu" or "shed"
	faultAfter = "15s" // how long the errors/cpu faults wait after start
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// settings is the resolved configuration: flag, then environment, then the
// config file, then the default.
type settings struct {
	Listen string
	DSN    string
	Log    string
	// Version is what the config file says this host should run; -check
	// compares it with the binary's own version.
	Version string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath  = fs.String("config", envOr("APP_CONFIG", "/etc/app/app.conf"), "config file (key=value lines); env APP_CONFIG")
		listen      = fs.String("listen", "", "listen address, e.g. :8080; env APP_LISTEN")
		dsn         = fs.String("dsn", "", "PostgreSQL DSN; env APP_DSN")
		logPath     = fs.String("log", "", "log file (default /var/log/app/app.log); env APP_LOG")
		showVersion = fs.Bool("version", false, "print the version and exit")
		check       = fs.Bool("check", false, "check the configuration and the database schema, then exit")
		waitURL     = fs.String("wait", "", "wait until URL answers 200, then exit (used by bin/start)")
		waitFor     = fs.Duration("wait-timeout", 10*time.Second, "how long -wait waits")
		waitVersion = fs.String("wait-version", "", "with -wait: the body must be this version (the URL is /version)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}
	if *waitURL != "" {
		if err := waitHealthy(*waitURL, *waitVersion, *waitFor); err != nil {
			fmt.Fprintln(stderr, "app:", err)
			return 1
		}
		return 0
	}

	s, err := resolve(*configPath, settings{Listen: *listen, DSN: *dsn, Log: *logPath})
	if err != nil {
		fmt.Fprintln(stderr, "app:", err)
		return 2
	}
	if *check {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := checkConfig(ctx, s); err != nil {
			fmt.Fprintln(stderr, "app: check failed:", err)
			return 1
		}
		fmt.Fprintf(stdout, "config ok: version %s, listen %s, schema ok\n", version, s.Listen)
		return 0
	}

	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(stderr, "app:", err)
		return 1
	}
	defer logf.Close()
	a := newApp(s, logf)
	defer a.close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.serve(ctx); err != nil {
		a.logf("ERROR", "serve: %v", err)
		fmt.Fprintln(stderr, "app:", err)
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// resolve fills the settings not given as flags from the environment, the
// config file (missing is fine unless it was asked for explicitly) and defaults.
func resolve(path string, s settings) (settings, error) {
	file := map[string]string{}
	if path != "" {
		f, err := os.Open(path)
		switch {
		case err == nil:
			file, err = parseConfig(f)
			f.Close()
			if err != nil {
				return s, fmt.Errorf("%s: %w", path, err)
			}
		case errors.Is(err, os.ErrNotExist) && os.Getenv("APP_CONFIG") == "" && path == "/etc/app/app.conf":
		default:
			return s, err
		}
	}
	pick := func(flagVal, env, key, def string) string {
		for _, v := range []string{flagVal, os.Getenv(env), file[key]} {
			if v != "" {
				return v
			}
		}
		return def
	}
	s.Listen = pick(s.Listen, "APP_LISTEN", "listen", ":8080")
	s.DSN = pick(s.DSN, "APP_DSN", "dsn", "")
	s.Log = pick(s.Log, "APP_LOG", "log", "/var/log/app/app.log")
	s.Version = file["version"]
	return s, nil
}

// parseConfig reads key=value lines; # starts a comment line.
func parseConfig(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key=value, got %q", n, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

func waitHealthy(url, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			got := strings.TrimSpace(string(body))
			switch {
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("status %d", resp.StatusCode)
			case want != "" && got != want:
				err = fmt.Errorf("version %s answers, want %s (is another process on the port?)", got, want)
			default:
				return nil
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s: %v", url, timeout, last)
}
