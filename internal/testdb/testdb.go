// Package testdb starts private, throw-away PostgreSQL 15 and MariaDB servers
// for tests: one server of each kind per test process (started on first use),
// listening on 127.0.0.1 on a free port with its data in a temporary
// directory, and a database per test.
//
// The server is stopped and its directory removed when the test process
// ends, however it ends: a small reaper process waits on a pipe from the test
// process and cleans up when that pipe closes. Call Main from TestMain to stop
// it explicitly at the end of the run.
//
// It is for tests only.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// PostgresBin is where Debian's postgresql-15 puts its server binaries.
var PostgresBin = "/usr/lib/postgresql/15/bin"

// Server is a running database server of this test process.
type Server struct {
	Driver   string // "postgres" or "mysql"
	Host     string // 127.0.0.1
	Port     int
	User     string // superuser
	Password string
	Socket   string // unix socket directory (postgres) or file (mysql)
	BinDir   string // where the server's binaries are (pg_dump, mariadb-dump live near)
	Dir      string // the temporary directory holding data, socket and log

	cmd    *exec.Cmd
	reaper *os.File // write end of the reaper's pipe; closing it stops the server
	admin  *sql.DB

	// how it was launched, for Restart
	cred *syscall.Credential
	bin  string
	args []string
}

var (
	pgOnce, myOnce sync.Once
	pgSrv, mySrv   *Server
	pgErr, myErr   error
)

// Main runs the tests and then stops any server they started. Use it as
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the servers this process started (the reaper would do it at exit anyway).
func Stop() {
	for _, s := range []*Server{pgSrv, mySrv} {
		if s != nil {
			s.stop()
		}
	}
}

// Instance is one test's handle on a shared server: the databases it creates
// are dropped when the test ends.
type Instance struct {
	*Server
	t       testing.TB
	mu      sync.Mutex
	created []string
	pools   map[string]*sql.DB
}

// Postgres returns the process's PostgreSQL server, starting it on first use.
// It skips the test when PostgreSQL is not installed (fails under CI=true).
func Postgres(t testing.TB) *Instance {
	t.Helper()
	need(t, filepath.Join(PostgresBin, "initdb"), filepath.Join(PostgresBin, "postgres"))
	pgOnce.Do(func() { pgSrv, pgErr = startPostgres() })
	if pgErr != nil {
		t.Fatalf("testdb: starting PostgreSQL: %v", pgErr)
	}
	return newInstance(t, pgSrv)
}

// MariaDB returns the process's MariaDB server, starting it on first use.
// It skips the test when MariaDB is not installed (fails under CI=true).
func MariaDB(t testing.TB) *Instance {
	t.Helper()
	need(t, mariadbd(), "mariadb-install-db")
	myOnce.Do(func() { mySrv, myErr = startMariaDB() })
	if myErr != nil {
		t.Fatalf("testdb: starting MariaDB: %v", myErr)
	}
	return newInstance(t, mySrv)
}

// Require skips the test when the binaries for driver ("postgres" or
// "mysql") are missing, or fails it under CI=true.
func Require(t testing.TB, driver string) {
	t.Helper()
	switch driver {
	case "postgres":
		need(t, filepath.Join(PostgresBin, "initdb"), filepath.Join(PostgresBin, "postgres"))
	case "mysql":
		need(t, mariadbd(), "mariadb-install-db")
	default:
		t.Fatalf("testdb: unknown driver %q", driver)
	}
}

func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			msg := fmt.Sprintf("testdb: %s not found (install postgresql and mariadb-server: scripts/setup-debian.sh)", b)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

func mariadbd() string {
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "mariadbd"
}

func newInstance(t testing.TB, s *Server) *Instance {
	in := &Instance{Server: s, t: t, pools: map[string]*sql.DB{}}
	t.Cleanup(in.Close)
	return in
}

// DSN returns a DSN for database dbname on this server, in the driver's own
// form: a postgres:// URL or a go-sql-driver/mysql DSN.
func (s *Server) DSN(dbname string) string {
	if s.Driver == "postgres" {
		return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", s.User, s.Password, s.Host, s.Port, dbname)
	}
	return fmt.Sprintf("%s:%s@tcp(%s:%d)/%s?multiStatements=true&parseTime=true", s.User, s.Password, s.Host, s.Port, dbname)
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SQLDriver is the database/sql driver name for this server ("pgx" or "mysql").
func (s *Server) SQLDriver() string {
	if s.Driver == "postgres" {
		return "pgx"
	}
	return "mysql"
}

var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database (dropping one of that name left
// over) and drops it when the test ends. It returns its DSN.
func (in *Instance) CreateDatabase(name string) string {
	in.t.Helper()
	if !nameRE.MatchString(name) {
		in.t.Fatalf("testdb: database name %q: use lower-case letters, digits and _", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := quote(in.Driver, name)
	if _, err := in.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q); err != nil {
		in.t.Fatalf("testdb: drop database %s: %v", name, err)
	}
	if _, err := in.admin.ExecContext(ctx, "CREATE DATABASE "+q); err != nil {
		in.t.Fatalf("testdb: create database %s: %v", name, err)
	}
	in.mu.Lock()
	in.created = append(in.created, name)
	in.mu.Unlock()
	return in.DSN(name)
}

// UniqueName returns prefix plus a random suffix, for tests that run in parallel.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// DB returns a pool on database dbname, closed when the test ends.
func (in *Instance) DB(dbname string) *sql.DB {
	in.t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if db, ok := in.pools[dbname]; ok {
		return db
	}
	db, err := sql.Open(in.SQLDriver(), in.DSN(dbname))
	if err != nil {
		in.t.Fatalf("testdb: open %s: %v", dbname, err)
	}
	in.pools[dbname] = db
	return db
}

// Exec runs sql (one or more statements) in database dbname; it fails the test on error.
func (in *Instance) Exec(dbname, query string, args ...any) {
	in.t.Helper()
	if err := in.ExecErr(dbname, query, args...); err != nil {
		in.t.Fatalf("testdb: exec in %s: %v\n%s", dbname, err, query)
	}
}

// ExecErr runs sql in database dbname and returns its error.
func (in *Instance) ExecErr(dbname, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := in.DB(dbname).ExecContext(ctx, query, args...)
	return err
}

// QueryString runs a query returning one value and returns it as a string.
func (in *Instance) QueryString(dbname, query string, args ...any) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v sql.NullString
	if err := in.DB(dbname).QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
		in.t.Fatalf("testdb: query in %s: %v\n%s", dbname, err, query)
	}
	return v.String
}

// Close closes the test's pools and drops the databases it created. It runs
// through t.Cleanup; calling it again does nothing.
func (in *Instance) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, db := range in.pools {
		_ = db.Close()
	}
	in.pools = map[string]*sql.DB{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range in.created {
		stmt := "DROP DATABASE IF EXISTS " + quote(in.Driver, name)
		if in.Driver == "postgres" {
			stmt += " WITH (FORCE)"
		}
		if _, err := in.admin.ExecContext(ctx, stmt); err != nil {
			in.t.Logf("testdb: drop database %s: %v", name, err)
		}
	}
	in.created = nil
}

func quote(driver, name string) string {
	if driver == "postgres" {
		return `"` + name + `"`
	}
	return "`" + name + "`"
}

// ---------------------------------------------------------------------------
// Starting and stopping

// runAs is the system user a server runs as when we are root (neither server
// runs as root); nil when we are not root and run it as ourselves.
func runAs(name string) (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, -1, -1, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("system user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

func newDir(prefix string, uid, gid int) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	// The server user must reach its data directory inside our temp dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
	return cmd
}

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func startPostgres() (*Server, error) {
	cred, uid, gid, err := runAs("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := newDir("testdb-pg-", uid, gid)
	if err != nil {
		return nil, err
	}
	s := &Server{Driver: "postgres", Host: "127.0.0.1", User: "postgres", Password: randomPassword(),
		Socket: dir, BinDir: PostgresBin, Dir: dir}
	if err := s.startReaper(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := initPostgres(cred, dir, s.Password); err != nil {
		s.stop()
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			s.stop()
			return nil, err
		}
		s.Port = port
		s.cred, s.bin = cred, filepath.Join(PostgresBin, "postgres")
		s.args = []string{"-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", dir,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "logging_collector=off"}
		lastErr = s.launch(s.cred, s.bin, s.args...)
		if lastErr == nil {
			return s, nil
		}
	}
	s.stop()
	return nil, lastErr
}

func startMariaDB() (*Server, error) {
	cred, uid, gid, err := runAs("mysql")
	if err != nil {
		return nil, err
	}
	dir, err := newDir("testdb-my-", uid, gid)
	if err != nil {
		return nil, err
	}
	s := &Server{Driver: "mysql", Host: "127.0.0.1", User: "root", Password: randomPassword(),
		Socket: filepath.Join(dir, "mysqld.sock"), BinDir: "/usr/bin", Dir: dir}
	if err := s.startReaper(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	// A temporary directory of its own: information_schema queries spill to
	// temporary tables there, and the machine's /tmp is shared with every test.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		s.stop()
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(tmp, uid, gid); err != nil {
			s.stop()
			return nil, err
		}
	}
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	if cred != nil {
		args = append(args, "--user=mysql")
	}
	install := command(cred, "mariadb-install-db", args...)
	if out, err := install.CombinedOutput(); err != nil {
		s.stop()
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	// The init file gives root@127.0.0.1 (which install-db creates without a
	// password) the password, so that TCP logins check it.
	initFile := filepath.Join(dir, "init.sql")
	initSQL := fmt.Sprintf("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n"+
		"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '%s';\n"+
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n", s.Password)
	if err := os.WriteFile(initFile, []byte(initSQL), 0o644); err != nil {
		s.stop()
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			s.stop()
			return nil, err
		}
		s.Port = port
		margs := []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, "--socket=" + s.Socket,
			"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve",
			"--init-file=" + initFile, "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			"--log-error=" + filepath.Join(dir, "error.log"), "--skip-log-bin",
			"--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
			"--innodb-log-file-size=16M", "--innodb-doublewrite=0", "--max-connections=200"}
		if cred != nil {
			margs = append(margs, "--user=mysql")
		}
		lastErr = s.launch(cred, mariadbd(), margs...)
		if lastErr == nil {
			return s, nil
		}
	}
	s.stop()
	return nil, lastErr
}

// initPostgres creates a cluster in dir/data whose superuser postgres has
// password over TCP (scram) and is trusted on the unix socket.
func initPostgres(cred *syscall.Credential, dir, password string) error {
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	initdb := command(cred, filepath.Join(PostgresBin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--pwfile", pwfile, "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// launch starts the server and waits until the superuser can connect over TCP.
func (s *Server) launch(cred *syscall.Credential, bin string, args ...string) error {
	logPath := filepath.Join(s.Dir, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := command(cred, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with us even if the reaper cannot run.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd = cmd
	s.tellReaper(cmd.Process.Pid)

	db, err := sql.Open(s.SQLDriver(), s.DSN(map[string]string{"postgres": "postgres", "mysql": ""}[s.Driver]))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			s.admin = db
			return nil
		}
		select {
		case werr := <-exited:
			_ = db.Close()
			s.cmd = nil
			logs, _ := os.ReadFile(logPath)
			if el, e := os.ReadFile(filepath.Join(s.Dir, "error.log")); e == nil {
				logs = append(logs, el...)
			}
			return fmt.Errorf("%s exited (%v):\n%s", filepath.Base(bin), werr, tail(string(logs), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = db.Close()
			// Kill it so a retry on another port does not find its files locked.
			if IsProcess(cmd.Process.Pid, filepath.Base(bin)) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			<-exited
			s.cmd = nil
			return fmt.Errorf("%s did not accept connections within 60s: %v", filepath.Base(bin), err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startReaper starts a shell that waits for its stdin (a pipe from us) to
// close, then kills the server's process group and removes the directory: so
// cleanup happens even when the test binary panics or is killed.
func (s *Server) startReaper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	// It signals only while the pid is still the server's (its comm is the
	// server's name): a pid, and so a process group id, is reused once its
	// process is gone, and a stray SIGKILL would hit a test host's shell.
	script := `dir=$1; name=$2; pid=
ours() { [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; }
while read -r line; do pid=$line; done
if ours; then
  kill -QUIT -- -"$pid" 2>/dev/null
  i=0; while ours && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  ours && kill -KILL -- -"$pid" 2>/dev/null
fi
rm -rf -- "$dir"`
	cmd := exec.Command("/bin/sh", "-c", script, "reaper", s.Dir, s.serverName())
	cmd.Stdin = r
	// Its own session: a Ctrl-C to the test's process group does not kill the reaper first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start reaper: %w", err)
	}
	r.Close()
	go func() { _ = cmd.Wait() }()
	s.reaper = w
	return nil
}

// serverName is the server process's comm (/proc/PID/comm).
func (s *Server) serverName() string {
	if s.Driver == "mysql" {
		return filepath.Base(mariadbd())
	}
	return "postgres"
}

// IsProcess reports whether pid is alive and named name: the check to make
// before signalling a pid that may have exited (and been reused) meanwhile.
func IsProcess(pid int, name string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(b)) == name
}

func (s *Server) tellReaper(pid int) {
	if s.reaper != nil {
		fmt.Fprintf(s.reaper, "%d\n", pid)
	}
}

// stop shuts the server down and removes its directory (through the reaper).
func (s *Server) stop() {
	if s.admin != nil {
		_ = s.admin.Close()
		s.admin = nil
	}
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGQUIT is PostgreSQL's immediate shutdown; MariaDB treats it as a stop too.
		sig := syscall.SIGQUIT
		if s.Driver == "mysql" {
			sig = syscall.SIGTERM
		}
		if IsProcess(s.cmd.Process.Pid, s.serverName()) {
			_ = syscall.Kill(-s.cmd.Process.Pid, sig)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if err := syscall.Kill(s.cmd.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if IsProcess(s.cmd.Process.Pid, s.serverName()) {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		s.cmd = nil
	}
	if s.reaper != nil {
		fmt.Fprintln(s.reaper) // stopped: nothing for the reaper to signal
		_ = s.reaper.Close()
		s.reaper = nil
	}
	// The reaper removes the directory too; do it here so Stop is synchronous.
	_ = os.RemoveAll(s.Dir)
}

// Logs returns the server's log (for a failing test's output).
func (s *Server) Logs() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if el, err := os.ReadFile(filepath.Join(s.Dir, "error.log")); err == nil {
		b = append(b, el...)
	}
	return strings.TrimSpace(string(b))
}
