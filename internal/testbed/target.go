package testbed

import (
	"context"
	"fmt"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/modules"
)

// SSHConfig is the executor/ssh Config that reaches the host as deploy with
// the bed's key and known_hosts (tests change fields to provoke faults).
func (h *Host) SSHConfig() ssh.Config {
	return ssh.Config{
		Address: h.Address, Port: h.Port, User: h.User,
		PrivateKeyFiles: []string{h.KeyFile},
		KnownHostsFile:  h.KnownHostsFile,
		Timeout:         5 * time.Second,
	}
}

// Target returns an executor/ssh Target connected to the named host, from a
// pool the bed closes on Close.
func (b *Testbed) Target(name string) (modules.Target, error) {
	h := b.Host(name)
	if h == nil {
		return nil, fmt.Errorf("testbed: no host %q", name)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("testbed: closed")
	}
	pool, _ := b.targets.(*ssh.Pool)
	if pool == nil {
		pool = ssh.NewPool(ssh.Options{})
		b.targets = pool
		b.closers = append(b.closers, pool.Close)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pool.Target(ctx, name, h.SSHConfig())
}
