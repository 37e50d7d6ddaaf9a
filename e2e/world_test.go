package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/upgrader-dev/upgrader/examples/active-standby/testenv"
)

// world is one scenario's running example: hosts, PostgreSQL, nginx, v1 in
// production, and a client requesting the service through nginx.
type world struct {
	t      *testing.T
	env    *testenv.Env
	client *client
	logDir string
}

// newWorld starts a fresh world and installs v1 with upgrader itself
// (examples/active-standby/bootstrap). Everything is torn down when the test ends.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := t.TempDir()
	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{ExampleDir: exampleDir, Dist: distDir, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("tearing down: %v", err)
		}
	})
	w := &world{t: t, env: env, logDir: work}
	var out bytes.Buffer
	if err := env.Bootstrap(ctx, upgraderBin, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("world up in %v (hosts, PostgreSQL, v1 installed by upgrader apply bootstrap)", time.Since(start).Round(100*time.Millisecond))
	if v := w.version("primary"); v != "1.0.0" {
		t.Fatalf("after bootstrap primary serves %q", v)
	}
	w.client = startClient("http://" + env.Host("lb").Address + "/version")
	t.Cleanup(func() { w.client.stop() })
	return w
}

// commonVars shrink the procedure's days to seconds. CPU is not bounded:
// the scenarios share two cores, and /proc/stat is machine-wide.
func (w *world) commonVars() []string {
	return []string{
		"-var-file", w.env.VarFile,
		"-var", "observe_interval=1s",
		"-var", "breach_for=3s",
		"-var", "max_cpu_percent=100",
		"-var", "max_memory_percent=99",
		"-var", "check_retries=3",
		"-var", "check_interval=1s",
		"-var", "rate_window=5s", // Prometheus scrapes every second
	}
}

// result of one upgrader command.
type result struct {
	code   int
	output string
	took   time.Duration
}

// upgrader runs the upgrader binary in the example's directory.
func (w *world) upgrader(args ...string) result {
	w.t.Helper()
	cmd := exec.Command(upgraderBin, args...)
	cmd.Dir = w.env.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{output: out.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("upgrader %s: %v", strings.Join(args, " "), err)
	}
	w.saveOutput(args[0], r.output)
	return r
}

// apply runs `upgrader apply -auto-approve` with the common and extra vars.
func (w *world) apply(extra ...string) result {
	w.t.Helper()
	args := append([]string{"apply", "-auto-approve", "-no-color"}, w.commonVars()...)
	args = append(args, extra...)
	r := w.upgrader(append(args, ".")...)
	w.t.Logf("upgrader apply: exit %d after %v", r.code, r.took.Round(100*time.Millisecond))
	if r.code != 0 {
		w.logFailure(r.output)
	}
	return r
}

// logFailure shows how a failed run went: what failed, what was undone.
func (w *world) logFailure(out string) {
	w.t.Helper()
	n, started := 0, false
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if !started { // skip the plan: only what happened
			started = strings.Contains(l, " run ") && strings.HasSuffix(l, " started")
			continue
		}
		if strings.Contains(l, "fail") || strings.Contains(l, "escalat") || strings.Contains(l, "undo") || strings.Contains(l, "rolled back") {
			if len(line) > 200 {
				line = line[:200] + " [...]"
			}
			w.t.Logf("  | %s", line)
			if n++; n == 40 {
				return
			}
		}
	}
}

// saveOutput keeps a command's output with the test's files, or under
// $E2E_LOG_DIR/TEST/ when set (kept after the test, for reading).
func (w *world) saveOutput(name, out string) {
	dir := w.logDir
	if d := os.Getenv("E2E_LOG_DIR"); d != "" {
		dir = filepath.Join(d, w.t.Name())
		os.MkdirAll(dir, 0o755)
	}
	f := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	os.WriteFile(f, []byte(out), 0o644)
}

// exec runs a command as root inside a host.
func (w *world) exec(host, cmd string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.env.Host(host).Exec(ctx, cmd)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// version is what the app on host answers at /version (asked on the host itself).
func (w *world) version(host string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := w.env.Host(host).Exec(ctx, "curl -s --max-time 3 http://127.0.0.1:8080/version")
	if err != nil {
		return "down: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// upstream is the host nginx sends production traffic to, by name.
func (w *world) upstream() string {
	w.t.Helper()
	resp, err := http.Get("http://" + w.env.Host("lb").Address + "/health")
	if err != nil {
		w.t.Fatalf("lb: %v", err)
	}
	resp.Body.Close()
	addr := resp.Header.Get("X-Upstream")
	for _, h := range w.env.Bed.Hosts() {
		if addr == h.Address+":8080" {
			return h.Name
		}
	}
	return "unknown upstream " + addr
}

// tree is a host's /opt/app and /etc/app, byte for byte: every path with its
// type, mode, owner and link target, and every regular file's sha256 (the
// app's pid file excluded: it changes with every start).
func (w *world) tree(host string) string {
	w.t.Helper()
	return w.exec(host, `cd / && find /opt/app /etc/app -name '*.pid' -prune -o -printf '%p %y %m %u:%g %l\n' | sort && `+
		`find /opt/app /etc/app -type f ! -name '*.pid' -exec sha256sum {} + | sort -k2`)
}

// dbState is a database's schema (columns), its rows and its migration version.
func (w *world) dbState(dsn string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sb strings.Builder
	for _, q := range []string{
		`SELECT table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable || ' default=' || coalesce(column_default, '-')
		   FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
		`SELECT id || ' ' || name FROM items ORDER BY id`,
		`SELECT 'migration ' || version || ' dirty=' || dirty FROM schema_migrations`,
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
			continue
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			sb.WriteString(s + "\n")
		}
		rows.Close()
	}
	return sb.String()
}

func (w *world) hasColumn(dsn, table, column string) bool {
	return strings.Contains(w.dbState(dsn), table+"."+column+" ")
}

// journal reads the latest run's journal events.
type event struct {
	Type string          `json:"type"`
	Node string          `json:"node"`
	Host string          `json:"host"`
	Data json.RawMessage `json:"data"`
}

func (w *world) journal() []event {
	w.t.Helper()
	files, _ := filepath.Glob(filepath.Join(w.env.Dir, ".upgrader", "runs", "*", "journal.jsonl"))
	if len(files) == 0 {
		return nil
	}
	newest := files[0]
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			if nfi, _ := os.Stat(newest); fi.ModTime().After(nfi.ModTime()) {
				newest = f
			}
		}
	}
	data, err := os.ReadFile(newest)
	if err != nil {
		w.t.Fatal(err)
	}
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			evs = append(evs, e)
		}
	}
	return evs
}

// count returns how many events of type typ the journal holds per node.
func count(evs []event, typ string) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		if e.Type == typ {
			m[e.Node]++
		}
	}
	return m
}

// order lists the nodes of the events of type typ, in journal order, once
// each (a step journals one event per host and one for itself).
func order(evs []event, typ string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range evs {
		if e.Type == typ && !seen[e.Node] {
			seen[e.Node] = true
			out = append(out, e.Node)
		}
	}
	return out
}

// client requests the service through nginx and counts what fails: one
// worker on a kept-alive connection (as browsers and API clients do), one
// opening a new connection per request, each every 10 ms.
type client struct {
	url      string
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	total    int
	failed   int
	failures []string
	versions map[string]int
}

func startClient(url string) *client {
	c := &client{url: url, done: make(chan struct{}), versions: map[string]int{}}
	c.wg.Add(2)
	go c.loop(&http.Client{Timeout: 3 * time.Second})
	go c.loop(&http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}})
	return c
}

func (c *client) loop(hc *http.Client) {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		resp, err := hc.Get(c.url)
		var body []byte
		if err == nil {
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			resp.Body.Close()
			body = buf.Bytes()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
			}
		}
		c.mu.Lock()
		c.total++
		if err != nil {
			c.failed++
			if len(c.failures) < 10 {
				c.failures = append(c.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
		} else {
			c.versions[string(bytes.TrimSpace(body))]++
		}
		c.mu.Unlock()
	}
}

func (c *client) stop() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.wg.Wait()
}

// report stops the client, logs the counts and fails the test on any failed request.
func (w *world) reportClient() {
	w.t.Helper()
	c := w.client
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	w.t.Logf("client through nginx: %d requests, %d failed, versions served %v", c.total, c.failed, c.versions)
	if c.total == 0 {
		w.t.Error("the client made no request")
	}
	if c.failed > 0 {
		w.t.Errorf("%d requests through nginx failed during the run (switches must lose none): %v", c.failed, c.failures)
	}
}

// killProcess kills a running upgrader as a crash would.
func killProcess(p *os.Process) error { return p.Signal(syscall.SIGKILL) }
