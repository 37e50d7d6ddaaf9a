// Package testenv builds the example's world on test hosts: hosts primary,
// standby, test, lb and db (internal/testbed), a real PostgreSQL server on
// db holding the databases prod (schema 1) and test (schema 2, as the
// release under test needs), and a copy of the example
// directory with hosts.hcl and testenv.vars.hcl written for those hosts.
// Bootstrap then runs the real upgrader on examples/active-standby/bootstrap
// to install v1 in production, v2 in the test environment and nginx on lb.
//
// It is used by the end-to-end tests (e2e/) and by scripts/example.sh; it is
// test infrastructure, not part of upgrader.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/internal/testprom"
)

// Hosts are the example's host names.
var Hosts = []string{"primary", "standby", "test", "lb", "db"}

// PostgresBin holds Debian's PostgreSQL 15 server binaries.
var PostgresBin = "/usr/lib/postgresql/15/bin"

// Options for Start.
type Options struct {
	ExampleDir string // examples/active-standby
	Dist       string // built release tarballs (build.sh's output); linked as Dir/dist
	WorkDir    string // where the example is copied; must exist
	Persistent bool   // the hosts outlive this process (testenv up)
}

// Env is a running example world.
type Env struct {
	Bed     *testbed.Testbed
	Dir     string // the example copy: upgrade.hcl, hosts.hcl, dist -> Options.Dist
	VarFile string // prod_dsn, test_dsn and prometheus_url
	ProdDSN string
	TestDSN string
	PGData  string
	// Prom is the world's Prometheus: on host db (a monitoring host),
	// scraping the app on primary, standby and test every second.
	Prom *testprom.Server

	pg       *exec.Cmd
	pgParent string
}

// state is what `testenv up` leaves for `testenv down`.
type state struct {
	Dir    string `json:"dir"`
	PGData string `json:"pgdata"`
}

// Start brings up the hosts and PostgreSQL and writes the example copy.
// On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	bed, err := testbed.Start(ctx, testbed.Options{Hosts: Hosts, Persistent: opts.Persistent})
	if err != nil {
		return nil, err
	}
	e := &Env{Bed: bed, Dir: filepath.Join(opts.WorkDir, "active-standby")}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if opts.Persistent {
		if err := os.MkdirAll(filepath.Join(opts.WorkDir, "testbed"), 0o755); err != nil {
			return nil, err
		}
		if err := bed.Save(filepath.Join(opts.WorkDir, "testbed")); err != nil {
			return nil, err
		}
	}
	if err := e.prepareHosts(ctx); err != nil {
		return nil, err
	}
	if err := e.startPostgres(ctx, opts.WorkDir, opts.Persistent); err != nil {
		return nil, err
	}
	if err := e.startPrometheus(ctx, opts.Persistent); err != nil {
		return nil, err
	}
	if err := copyExample(opts.ExampleDir, e.Dir); err != nil {
		return nil, err
	}
	migrations := filepath.Join(opts.ExampleDir, "migrations")
	if err := migrateTo(ctx, e.ProdDSN, migrations, 1); err != nil {
		return nil, err
	}
	if err := migrateTo(ctx, e.TestDSN, migrations, 2); err != nil {
		return nil, err
	}
	dist, err := filepath.Abs(opts.Dist)
	if err != nil {
		return nil, err
	}
	if err := os.Symlink(dist, filepath.Join(e.Dir, "dist")); err != nil {
		return nil, err
	}
	for _, d := range []string{e.Dir, filepath.Join(e.Dir, "bootstrap")} {
		if err := bed.WriteHostsHCL(filepath.Join(d, "hosts.hcl")); err != nil {
			return nil, err
		}
	}
	e.VarFile = filepath.Join(opts.WorkDir, "testenv.vars.hcl")
	vars := fmt.Sprintf("prod_dsn = %q\ntest_dsn = %q\nprometheus_url = %q\n", e.ProdDSN, e.TestDSN, e.Prom.URL)
	if err := os.WriteFile(e.VarFile, []byte(vars), 0o600); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(state{Dir: e.Dir, PGData: e.PGData})
	if err := os.WriteFile(filepath.Join(opts.WorkDir, "testenv.json"), data, 0o644); err != nil {
		return nil, err
	}
	return e, nil
}

// Host returns the named test host.
func (e *Env) Host(name string) *testbed.Host { return e.Bed.Host(name) }

// prepareHosts gives the deploy user the directories a real server would
// give the service account.
func (e *Env) prepareHosts(ctx context.Context) error {
	for _, h := range e.Bed.Hosts() {
		cmd := "mkdir -p /opt/app /etc/app /var/log/app && chown deploy:deploy /opt/app /etc/app /var/log/app"
		if h.Name == "lb" {
			cmd = "mkdir -p /etc/app /var/log/app /opt/nginx/tmp && chown deploy:deploy /etc/app /var/log/app"
		}
		if _, err := h.Exec(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// startPostgres runs a PostgreSQL 15 server inside host db, listening on
// db's address, with roles and the databases prod and test (empty: the
// bootstrap migrates them).
func (e *Env) startPostgres(ctx context.Context, workDir string, persistent bool) error {
	db := e.Bed.Host("db")
	// Its own directory under /tmp: postgres must reach it, and test temp dirs are 0700.
	parent, err := os.MkdirTemp("", "testenv-pg-")
	if err != nil {
		return err
	}
	e.pgParent = parent
	if err := os.Chmod(parent, 0o755); err != nil {
		return err
	}
	e.PGData = filepath.Join(parent, "data")
	if err := os.MkdirAll(e.PGData, 0o700); err != nil {
		return err
	}
	if err := run(ctx, "chown", "-R", "postgres:postgres", e.PGData); err != nil {
		return err
	}
	if err := run(ctx, "runuser", "-u", "postgres", "--", filepath.Join(PostgresBin, "initdb"),
		"-D", e.PGData, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"); err != nil {
		return err
	}
	hba, err := os.OpenFile(filepath.Join(e.PGData, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(hba, "host all all %s/24 scram-sha-256\n", subnetOf(db.Address))
	hba.Close()

	args := []string{"netns", "exec", db.NetNS, "runuser", "-u", "postgres", "--", filepath.Join(PostgresBin, "postgres"),
		"-D", e.PGData, "-c", "listen_addresses=" + db.Address, "-c", "unix_socket_directories=" + e.PGData,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50"}
	cmd := exec.Command("ip", args...)
	logf, err := os.Create(filepath.Join(workDir, "postgres.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if persistent {
		// Outlives `testenv up`; testbed down kills it with the host.
		cmd.SysProcAttr = detached()
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	logf.Close()
	e.pg = cmd

	password := randHex(12)
	deadline := time.Now().Add(30 * time.Second)
	var conn *pgx.Conn
	for {
		conn, err = pgx.Connect(ctx, fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", e.PGData))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(workDir, "postgres.log"))
			return fmt.Errorf("testenv: postgres on host db did not start: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE ROLE app LOGIN PASSWORD '" + password + "'",
		"CREATE DATABASE prod OWNER app",
		"CREATE DATABASE test OWNER app",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("testenv: %s: %w", strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	e.ProdDSN = fmt.Sprintf("postgres://app:%s@%s:5432/prod?sslmode=disable", password, db.Address)
	e.TestDSN = fmt.Sprintf("postgres://app:%s@%s:5432/test?sslmode=disable", password, db.Address)
	return nil
}

// startPrometheus runs Prometheus in host db's network namespace, on db's
// address: upgrader reaches it as it would a monitoring host's.
func (e *Env) startPrometheus(ctx context.Context, persistent bool) error {
	db := e.Bed.Host("db")
	dir := filepath.Join(e.pgParent, "prometheus")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var targets []string
	for _, h := range []string{"primary", "standby", "test"} {
		targets = append(targets, e.Bed.Host(h).Address+":8080")
	}
	srv, err := testprom.Start(ctx, testprom.Options{Targets: targets, ScrapeInterval: time.Second, Dir: dir,
		Listen: db.Address + ":9090", Prefix: []string{"ip", "netns", "exec", db.NetNS}, Detached: persistent})
	if err != nil {
		return fmt.Errorf("testenv: prometheus on host db: %w", err)
	}
	e.Prom = srv
	return nil
}

// migrateTo applies the example's migrations up to version as golang-migrate
// would, recording the version in its schema_migrations table: production
// is at 1 (v1's schema), the test database at 2 (the release under test).
func migrateTo(ctx context.Context, dsn, dir string, version int) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	ups, err := filepath.Glob(filepath.Join(dir, "*.up.sql"))
	if err != nil {
		return err
	}
	sort.Strings(ups)
	if len(ups) < version {
		return fmt.Errorf("testenv: %s has %d migrations, want %d", dir, len(ups), version)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, f := range ups[:version] {
		sql, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("testenv: %s: %w", filepath.Base(f), err)
		}
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)", version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Bootstrap runs `upgrader apply -auto-approve` on the bootstrap
// configuration: the state production is in before the upgrade.
func (e *Env) Bootstrap(ctx context.Context, upgrader string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, upgrader, "apply", "-auto-approve", "-no-color", "-var-file", e.VarFile, filepath.Join(e.Dir, "bootstrap"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testenv: bootstrap (upgrader apply bootstrap): %w", err)
	}
	return nil
}

// Close stops everything Start started.
func (e *Env) Close() error {
	var errs []error
	if e.Prom != nil {
		e.Prom.Stop()
	}
	if e.pg != nil && e.pg.Process != nil {
		e.pg.Process.Kill()
		e.pg.Wait()
	}
	if e.Bed != nil {
		errs = append(errs, e.Bed.Close())
	}
	if e.pgParent != "" {
		errs = append(errs, os.RemoveAll(e.pgParent))
	}
	return errors.Join(errs...)
}

// Down tears down what `testenv up` left in workDir.
func Down(workDir string) error {
	var st state
	data, err := os.ReadFile(filepath.Join(workDir, "testenv.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	bed, err := testbed.Load(filepath.Join(workDir, "testbed"))
	var errs []error
	if err == nil {
		errs = append(errs, bed.Close())
	} else {
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(filepath.Dir(st.PGData)), os.Remove(filepath.Join(workDir, "testenv.json")))
	return errors.Join(errs...)
}

// copyExample copies the example's sources (not dist/, state or host files).
func copyExample(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch {
		case rel == ".":
			return os.MkdirAll(dst, 0o755)
		case d.IsDir() && (rel == "dist" || rel == "app" || rel == "testenv" || strings.HasPrefix(d.Name(), ".")):
			return filepath.SkipDir
		case d.Name() == "hosts.hcl" || strings.HasSuffix(d.Name(), ".local.vars.hcl"):
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.Type()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func subnetOf(addr string) string {
	i := strings.LastIndexByte(addr, '.')
	return addr[:i] + ".0"
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
