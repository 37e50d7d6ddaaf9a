package lang

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/internal/sshconfig"
)

// sshConfigResult is a parsed ssh_config file (or why it could not be).
type sshConfigResult struct {
	file *sshconfig.File
	err  error
}

func (l *loader) sshConfigFile(path string) (*sshconfig.File, error) {
	if l.sshConfigs == nil {
		l.sshConfigs = map[string]sshConfigResult{}
	}
	r, ok := l.sshConfigs[path]
	if !ok {
		r.file, r.err = sshconfig.Parse(path)
		l.sshConfigs[path] = r
	}
	return r.file, r.err
}

// applySSHConfig fills the host's settings that the HCL leaves unset from
// its ssh_config file (HCL over ssh_config over defaults, as ssh(1) puts the
// command line over the file), and records where each setting came from.
func (l *loader) applySSHConfig(h *Host, b *hcl.Block, def Connection) {
	c := &h.Conn
	c.Origins = map[string]string{"address": "host block", "user": "default", "port": "default",
		"known_hosts_file": "default", "timeout": "default"}
	for name, where := range c.set {
		c.Origins[name] = where
	}
	if c.Bastion != "" {
		c.Origins["jumps"] = c.Origins["bastion"]
	}
	if c.SSHConfig == "" {
		return
	}
	subject := b.DefRange
	if c.sshConfigAt.Filename != "" {
		subject = c.sshConfigAt
	}
	f, err := l.sshConfigFile(c.SSHConfig)
	if errors.Is(err, os.ErrNotExist) && c.set["ssh_config"] == "" {
		return // the default file is read only when present
	}
	if err != nil {
		l.errorf(subject, "Invalid ssh_config", "Reading the OpenSSH client configuration for host %q: %s. Fix the file, or set ssh_config = \"\" in the connection block to not read it.", h.Name, err)
		return
	}
	alias := h.Address
	r := f.Resolve(alias)
	bad := func(s sshconfig.Setting, key, why string) {
		l.errorf(subject, "Invalid ssh_config", "%s, %s for host %q: %s.", c.SSHConfig+":"+strconv.Itoa(s.Line), key, h.Name, why)
	}
	unset := func(attr string) bool { _, ok := c.set[attr]; return !ok }
	if s, ok := r.Get("hostname"); ok {
		hn, err := sshconfig.Expand(s.Value, "", alias)
		switch {
		case err != nil:
			bad(s, "HostName", err.Error())
		case strings.HasPrefix(s.Value, "~"):
			bad(s, "HostName", "a host name, not a path")
		default:
			h.Address = hn
			c.Origins["address"] = s.Origin()
		}
	}
	if s, ok := r.Get("user"); ok && unset("user") {
		c.User, c.Origins["user"] = s.Value, s.Origin()
	}
	if s, ok := r.Get("port"); ok && unset("port") {
		if p, err := strconv.Atoi(s.Value); err != nil || p < 1 || p > 65535 {
			bad(s, "Port", "not a port number")
		} else {
			c.Port, c.Origins["port"] = p, s.Origin()
		}
	}
	if s, ok := r.Get("connecttimeout"); ok && unset("timeout") {
		if n, err := strconv.Atoi(s.Value); err != nil || n < 1 {
			bad(s, "ConnectTimeout", "not a number of seconds")
		} else {
			c.Timeout, c.Origins["timeout"] = time.Duration(n)*time.Second, s.Origin()
		}
	}
	if s, ok := r.Get("identitiesonly"); ok && unset("agent") {
		c.IdentitiesOnly = strings.EqualFold(s.Value, "yes")
		if c.IdentitiesOnly {
			c.Agent, c.Origins["agent"] = false, s.Origin()
		}
	}
	if s, ok := r.Get("hashknownhosts"); ok {
		c.HashKnownHosts, c.Origins["hash_known_hosts"] = strings.EqualFold(s.Value, "yes"), s.Origin()
	}
	if s, ok := r.Get("userknownhostsfile"); ok && unset("known_hosts_file") {
		if p, err := sshconfig.Expand(strings.Fields(s.Value)[0], c.User, h.Address); err != nil {
			bad(s, "UserKnownHostsFile", err.Error())
		} else {
			c.KnownHostsFile, c.Origins["known_hosts_file"] = p, s.Origin()
		}
	}
	if unset("private_key_file") && len(r.Identity) > 0 {
		var where []string
		for _, s := range r.Identity {
			p, err := sshconfig.Expand(s.Value, c.User, h.Address)
			if err != nil {
				bad(s, "IdentityFile", err.Error())
				continue
			}
			// ssh(1) skips default-looking identity files that do not exist.
			if _, err := os.Stat(p); err != nil {
				continue
			}
			c.KeyFiles = append(c.KeyFiles, p)
			where = append(where, s.Origin())
		}
		if len(where) > 0 {
			c.Origins["private_key_file"] = strings.Join(where, ", ")
		}
	}
	if s, ok := r.Get("proxyjump"); ok && unset("bastion") {
		hops, err := sshconfig.ParseJumps(s.Value)
		if err != nil {
			bad(s, "ProxyJump", err.Error())
			return
		}
		c.Jumps = nil
		for _, hop := range hops {
			c.Jumps = append(c.Jumps, l.resolveJump(f, hop, def, *c))
		}
		c.Origins["jumps"] = s.Origin()
	}
}

// resolveJump resolves one ProxyJump hop as its own alias in the same file;
// what the file does not say comes from the host's connection (user, keys,
// known_hosts), a hop's own ProxyJump is not followed.
func (l *loader) resolveJump(f *sshconfig.File, hop sshconfig.Jump, def, c Connection) Jump {
	r := f.Resolve(hop.Host)
	j := Jump{Name: hop.Host, Address: hop.Host, Port: 22, User: def.User, KnownHostsFile: c.KnownHostsFile}
	if c.PrivateKeyFile != "" {
		j.KeyFiles = []string{c.PrivateKeyFile}
	} else {
		j.KeyFiles = c.KeyFiles
	}
	if s, ok := r.Get("hostname"); ok {
		if hn, err := sshconfig.Expand(s.Value, "", hop.Host); err == nil {
			j.Address = hn
		}
	}
	if s, ok := r.Get("user"); ok {
		j.User = s.Value
	}
	if hop.User != "" {
		j.User = hop.User
	}
	if s, ok := r.Get("port"); ok {
		if p, err := strconv.Atoi(s.Value); err == nil {
			j.Port = p
		}
	}
	if hop.Port != 0 {
		j.Port = hop.Port
	}
	if s, ok := r.Get("userknownhostsfile"); ok {
		if p, err := sshconfig.Expand(strings.Fields(s.Value)[0], j.User, j.Address); err == nil {
			j.KnownHostsFile = p
		}
	}
	var keys []string
	for _, s := range r.Identity {
		if p, err := sshconfig.Expand(s.Value, j.User, j.Address); err == nil {
			if _, err := os.Stat(p); err == nil {
				keys = append(keys, p)
			}
		}
	}
	if len(keys) > 0 {
		j.KeyFiles = keys
	}
	return j
}
