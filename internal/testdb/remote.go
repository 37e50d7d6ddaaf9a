package testdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ExecFunc runs a shell command as root somewhere else (a test host's
// namespaces: testbed's Host.Exec) and returns its combined output.
type ExecFunc func(ctx context.Context, command string) (string, error)

// Remote is a PostgreSQL server started through an ExecFunc, listening on
// 127.0.0.1 of that place only: the controller reaches it only through an
// SSH tunnel, which is what it is for.
type Remote struct {
	*Server
	exec ExecFunc
}

// PostgresOn starts a private PostgreSQL through exec (inside a test host's
// network namespace), listening on 127.0.0.1:port there. Its data lives
// under /var/tmp, which the host shares with the controller (its /tmp is
// private). It is stopped and removed when the test ends.
func PostgresOn(t testing.TB, exec ExecFunc, port int) *Remote {
	t.Helper()
	need(t, filepath.Join(PostgresBin, "initdb"), filepath.Join(PostgresBin, "postgres"))
	cred, uid, gid, err := runAs("postgres")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/var/tmp", "testdb-remote-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	r := &Remote{Server: &Server{Driver: "postgres", Host: "127.0.0.1", Port: port, User: "postgres",
		Password: randomPassword(), Socket: dir, BinDir: PostgresBin, Dir: dir}, exec: exec}
	// The reaper removes the directory even if this process dies; the testbed
	// kills what runs in the host's namespace when it goes.
	if err := r.startReaper(); err != nil {
		_ = os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(r.stopRemote)
	data := filepath.Join(dir, "data")
	if err := initPostgres(cred, dir, r.Password); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user := "postgres"
	if cred == nil {
		user = strconv.Itoa(os.Geteuid())
	}
	start := fmt.Sprintf("setsid -f setpriv --reuid=%s --regid=%s --clear-groups %s/postgres -D %s -p %d -h 127.0.0.1 -k %s"+
		" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c logging_collector=off >%s/server.log 2>&1 </dev/null",
		user, user, PostgresBin, data, port, dir, dir)
	if cred == nil {
		start = fmt.Sprintf("setsid -f %s/postgres -D %s -p %d -h 127.0.0.1 -k %s >%s/server.log 2>&1 </dev/null", PostgresBin, data, port, dir, dir)
	}
	if out, err := exec(ctx, start); err != nil {
		t.Fatalf("testdb: start remote postgres: %v\n%s", err, out)
	}
	for {
		if _, err := exec(ctx, fmt.Sprintf("%s/pg_isready -q -h 127.0.0.1 -p %d", PostgresBin, port)); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("testdb: remote postgres did not start:\n%s", r.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(data, "postmaster.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil {
			r.tellReaper(pid)
		}
	}
	return r
}

// Psql runs SQL on database db of the remote server, over its unix socket
// where it runs.
func (r *Remote) Psql(t testing.TB, db, sql string) string {
	t.Helper()
	f, err := os.CreateTemp(r.Dir, "sql-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(sql); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_ = os.Chmod(f.Name(), 0o644)
	defer os.Remove(f.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := r.exec(ctx, fmt.Sprintf("%s/psql -X -q -t -A -v ON_ERROR_STOP=1 -h %s -p %d -U postgres -d %s -f %s",
		PostgresBin, r.Dir, r.Port, db, f.Name()))
	if err != nil {
		t.Fatalf("testdb: psql on remote %s: %v", db, err)
	}
	return strings.TrimSpace(out)
}

func (r *Remote) stopRemote() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pidFile := filepath.Join(r.Dir, "data", "postmaster.pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		pid := strings.SplitN(string(b), "\n", 2)[0]
		// Only while pid is still postgres: the testbed may have killed it
		// with its host already, and its pid may belong to another process now.
		ours := `[ "$(cat /proc/` + pid + `/comm 2>/dev/null)" = postgres ]`
		_, _ = r.exec(ctx, ours+" && kill -QUIT "+pid+"; i=0; while "+ours+" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "+ours+" && kill -KILL "+pid+"; true")
	}
	if r.reaper != nil {
		fmt.Fprintln(r.reaper) // stopped: nothing for the reaper to signal
		_ = r.reaper.Close()
		r.reaper = nil
	}
	_ = os.RemoveAll(r.Dir)
}
