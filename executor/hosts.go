package executor

import (
	"context"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// SSHHosts reaches hosts over SSH through one pooled connection per host.
type SSHHosts struct{ Pool *ssh.Pool }

// NewSSHHosts returns Hosts over a fresh SSH pool.
func NewSSHHosts(opts ssh.Options) *SSHHosts { return &SSHHosts{Pool: ssh.NewPool(opts)} }

// Target maps the host's resolved connection to the transport's config.
func (h *SSHHosts) Target(ctx context.Context, host *lang.Host) (modules.Target, error) {
	return h.Pool.Target(ctx, host.Name, SSHConfig(host))
}

func (h *SSHHosts) Close() error { return h.Pool.Close() }

// SSHConfig is the transport config of a host block.
func SSHConfig(host *lang.Host) ssh.Config {
	c := host.Conn
	var keys []string
	if c.PrivateKeyFile != "" {
		keys = []string{c.PrivateKeyFile}
	}
	return ssh.Config{
		Address: host.Address, Port: c.Port, User: c.User, PrivateKeyFiles: keys, Agent: c.Agent,
		KnownHostsFile: c.KnownHostsFile, AcceptNewHostKeys: c.AcceptNewHostKeys, Bastion: c.Bastion,
		Timeout: c.Timeout, Sudo: c.Sudo, SudoPassword: c.SudoPassword,
	}
}
