package executor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

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
	keys := c.KeyFiles
	if c.PrivateKeyFile != "" {
		keys = []string{c.PrivateKeyFile}
	}
	cfg := ssh.Config{
		Address: host.Address, Port: c.Port, User: c.User, PrivateKeyFiles: keys, Agent: c.Agent,
		KnownHostsFile: c.KnownHostsFile, AcceptNewHostKeys: c.AcceptNewHostKeys, Bastion: c.Bastion,
		Timeout: c.Timeout, Sudo: c.Sudo, SudoPassword: c.SudoPassword, HashKnownHosts: c.HashKnownHosts,
	}
	for _, j := range c.Jumps {
		cfg.Jumps = append(cfg.Jumps, ssh.Config{
			Address: j.Address, Port: j.Port, User: j.User, PrivateKeyFiles: j.KeyFiles, Agent: c.Agent,
			KnownHostsFile: j.KnownHostsFile, AcceptNewHostKeys: c.AcceptNewHostKeys, HashKnownHosts: c.HashKnownHosts,
			Timeout: c.Timeout,
		})
	}
	return cfg
}

// PlanHost is a host's effective connection, each setting with where it
// came from ("user deploy (ssh_config line 12)").
type PlanHost struct {
	Name     string   `json:"name"`
	Target   string   `json:"target"` // user@address:port
	Via      []string `json:"via,omitempty"`
	Settings []string `json:"settings"`
}

// planHosts lists the hosts whose connection takes anything from ssh_config
// (the others are exactly what the HCL says).
func planHosts(cfg *lang.Config) []PlanHost {
	var out []PlanHost
	for _, name := range cfg.HostOrder {
		h := cfg.Hosts[name]
		c := h.Conn
		used := false
		for _, o := range c.Origins {
			used = used || strings.HasPrefix(o, "ssh_config")
		}
		if !used {
			continue
		}
		ph := PlanHost{Name: name, Target: fmt.Sprintf("%s@%s", c.User, net.JoinHostPort(h.Address, strconv.Itoa(c.Port)))}
		for _, j := range c.Jumps {
			ph.Via = append(ph.Via, fmt.Sprintf("%s@%s", j.User, net.JoinHostPort(j.Address, strconv.Itoa(j.Port))))
		}
		if c.Bastion != "" {
			ph.Via = []string{c.Bastion}
		}
		add := func(key, label, value string) {
			if o := c.Origins[key]; o != "" && value != "" {
				ph.Settings = append(ph.Settings, fmt.Sprintf("%s %s (%s)", label, value, o))
			}
		}
		keys := c.KeyFiles
		if c.PrivateKeyFile != "" {
			keys = []string{c.PrivateKeyFile}
		}
		add("address", "hostname", h.Address)
		add("user", "user", c.User)
		add("port", "port", strconv.Itoa(c.Port))
		add("private_key_file", "identity_file", strings.Join(keys, ", "))
		add("known_hosts_file", "known_hosts_file", c.KnownHostsFile)
		add("jumps", "proxy_jump", strings.Join(ph.Via, " -> "))
		add("timeout", "timeout", c.Timeout.String())
		if c.IdentitiesOnly {
			add("agent", "identities_only", "yes")
		}
		if c.HashKnownHosts {
			add("hash_known_hosts", "hash_known_hosts", "yes")
		}
		out = append(out, ph)
	}
	return out
}
