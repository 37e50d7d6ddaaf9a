package testdb

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// PrivatePostgres starts a PostgreSQL server of the test's own, not shared
// with other tests of the process, for tests that stop and restart it
// (Halt, Start). It is stopped when the test ends.
func PrivatePostgres(t testing.TB) *Instance {
	t.Helper()
	need(t, filepath.Join(PostgresBin, "initdb"), filepath.Join(PostgresBin, "postgres"))
	s, err := startPostgres()
	if err != nil {
		t.Fatalf("testdb: starting PostgreSQL: %v", err)
	}
	t.Cleanup(s.stop) // runs after the Instance's Close (cleanups run last first)
	return newInstance(t, s)
}

// Halt stops the server as an operator restarting it would (fast shutdown:
// every connection is cut); its data stays. Start launches it again on the
// same port.
func (s *Server) Halt() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("testdb: the server is not running")
	}
	if s.bin == "" {
		return errors.New("testdb: only PostgreSQL servers can be halted")
	}
	if s.admin != nil {
		_ = s.admin.Close()
		s.admin = nil
	}
	pid := s.cmd.Process.Pid
	if IsProcess(pid, s.serverName()) {
		_ = syscall.Kill(pid, syscall.SIGINT) // PostgreSQL's fast shutdown
	}
	deadline := time.Now().Add(30 * time.Second)
	for IsProcess(pid, s.serverName()) {
		if time.Now().After(deadline) {
			return fmt.Errorf("testdb: postgres (pid %d) did not stop within 30s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd = nil
	return nil
}

// Start launches a halted server again, on the same port and data.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("testdb: the server is running")
	}
	return s.launch(s.cred, s.bin, s.args...)
}
