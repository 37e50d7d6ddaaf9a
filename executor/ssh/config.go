// Package ssh owns upgrader's transport: modules.Target over SSH and SFTP,
// with one pooled connection per host for the whole run, strict known_hosts
// checking, jump hosts, keepalives, and a long-lived remote shell per host
// that runs consecutive commands without a new session each.
//
// It imports modules and the SSH libraries only; the executor maps
// lang.Connection to Config.
package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// Config is how to reach one host.
type Config struct {
	Address         string // host name or IP
	Port            int    // 22 when 0
	User            string
	PrivateKeyFiles []string // ed25519, RSA or ECDSA, OpenSSH or PEM format
	Agent           bool     // also offer the keys of the agent at SSH_AUTH_SOCK
	// KnownHostsFile is checked strictly; ~/.ssh/known_hosts when "".
	KnownHostsFile string
	// AcceptNewHostKeys trusts an unknown host on first use and records its
	// key; a changed key is refused regardless.
	AcceptNewHostKeys bool
	Bastion           string // "[user@]host[:port]" jump host; "" for none
	// Jumps is a jump chain, first hop first (ProxyJump); a hop's own
	// Jumps and Bastion are ignored. Bastion, when set, is used instead.
	Jumps []Config
	// HashKnownHosts records accepted keys hashed (also done when the
	// known_hosts file already holds hashed names).
	HashKnownHosts bool
	Timeout        time.Duration // connect and handshake; 10s when 0
	Sudo           bool          // run commands and writes through sudo
	// SudoPassword is given to `sudo -S` on stdin (never in argv); "" runs
	// `sudo -n`, which fails instead of asking. One line.
	SudoPassword string
}

// PassphraseEnv holds the passphrase of encrypted private keys.
const PassphraseEnv = "UPGRADER_SSH_PASSPHRASE"

// Options are the pool's settings, shared by all hosts.
type Options struct {
	// Passphrase asks for an encrypted key's passphrase when PassphraseEnv is
	// unset (nil: such keys fail with an error saying to set it).
	Passphrase func(keyFile string) ([]byte, error)
	// CommandTimeout bounds a command whose Command.Timeout is 0 (1h when 0).
	CommandTimeout time.Duration
	// KeepaliveInterval and KeepaliveMax: a connection with no reply to
	// keepalive@openssh.com for Interval*Max is dead (5s and 3 when 0: 15s,
	// plus one reconnect attempt within the connect timeout: under 30s).
	KeepaliveInterval time.Duration
	KeepaliveMax      int
	// MaxSessions bounds concurrent sessions per connection (10, OpenSSH's
	// default MaxSessions, when 0).
	MaxSessions int
	// MaxShells bounds the long-lived shells per host (4 when 0); commands
	// beyond that wait for a free shell.
	MaxShells int
}

func (o Options) withDefaults() Options {
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = time.Hour
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = 5 * time.Second
	}
	if o.KeepaliveMax <= 0 {
		o.KeepaliveMax = 3
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10
	}
	if o.MaxShells <= 0 {
		o.MaxShells = 4
	}
	if o.MaxShells > o.MaxSessions-2 {
		// Leave room for SFTP and the session that kills a timed-out command.
		o.MaxShells = max(1, o.MaxSessions-2)
	}
	return o
}

func (c Config) port() int {
	if c.Port == 0 {
		return 22
	}
	return c.Port
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 10 * time.Second
	}
	return c.Timeout
}

func (c Config) addr() string { return net.JoinHostPort(c.Address, strconv.Itoa(c.port())) }

// hops is the jump chain: the bastion, or Jumps.
func (c Config) hops() ([]Config, error) {
	if c.Bastion == "" {
		return c.Jumps, nil
	}
	b, err := c.bastionConfig()
	if err != nil {
		return nil, err
	}
	return []Config{b}, nil
}

// hopName names a hop in errors.
func (c Config) hopName() string { return c.User + "@" + c.addr() }

// bastionConfig is c with the jump host's address, port and user.
func (c Config) bastionConfig() (Config, error) {
	b := c
	b.Bastion = ""
	s := c.Bastion
	if i := strings.LastIndex(s, "@"); i >= 0 {
		b.User, s = s[:i], s[i+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "22"
	}
	p, err := strconv.Atoi(port)
	if err != nil || host == "" || b.User == "" {
		return b, fmt.Errorf("bastion %q: want user@host:port", c.Bastion)
	}
	b.Address, b.Port = host, p
	return b, nil
}

// ---------------------------------------------------------------------------
// Authentication

// signers returns the signers of cfg's key files (parsed once per pool) and
// a closer for the agent connection (needed only during the handshake).
func (p *Pool) authMethods(cfg Config) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	for _, f := range cfg.PrivateKeyFiles {
		s, err := p.signer(f)
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
	}
	closer := func() {}
	if cfg.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil, errors.New("agent = true but SSH_AUTH_SOCK is not set")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh agent at SSH_AUTH_SOCK: %w", err)
		}
		closer = func() { conn.Close() }
		ag := agent.NewClient(conn)
		fileSigners := signers
		return []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			as, err := ag.Signers()
			if err != nil {
				return fileSigners, nil
			}
			return append(append([]ssh.Signer(nil), fileSigners...), as...), nil
		})}, closer, nil
	}
	if len(signers) == 0 {
		return nil, nil, errors.New("no private_key_file and no agent: nothing to authenticate with")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closer, nil
}

func (p *Pool) signer(file string) (ssh.Signer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.signers[file]; ok {
		return s, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pass := []byte(os.Getenv(PassphraseEnv))
		if len(pass) == 0 && p.opts.Passphrase != nil {
			if pass, err = p.opts.Passphrase(file); err != nil {
				return nil, fmt.Errorf("private key %s: passphrase: %w", file, err)
			}
		}
		if len(pass) == 0 {
			return nil, fmt.Errorf("private key %s is encrypted: set %s", file, PassphraseEnv)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", file, err)
	}
	p.signers[file] = s
	return s, nil
}

// ---------------------------------------------------------------------------
// Host keys

func knownHostsPath(cfg Config) string {
	if cfg.KnownHostsFile != "" {
		return cfg.KnownHostsFile
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".ssh", "known_hosts")
}

// hostKeyCheck returns the strict host key callback for cfg and the host key
// algorithms to ask for (those known_hosts has for the host, so the server
// offers a key we can check instead of another type).
func (p *Pool) hostKeyCheck(cfg Config) (ssh.HostKeyCallback, []string, error) {
	file := knownHostsPath(cfg)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if !cfg.AcceptNewHostKeys {
			return nil, nil, fmt.Errorf("known_hosts file %s does not exist: add the host's key to it, or set accept_new_host_keys = true to record it on first connect", file)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, nil, err
		}
	}
	db, err := knownhosts.NewDB(file)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts file %s: %w", file, err)
	}
	check := db.HostKeyCallback()
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		offered := key.Type() + " " + ssh.FingerprintSHA256(key)
		var revoked *xknownhosts.RevokedError
		if errors.As(err, &revoked) {
			return fmt.Errorf("host key %s of %s is marked @revoked in %s:%d: refusing to connect", offered, hostname, revoked.Revoked.Filename, revoked.Revoked.Line)
		}
		if knownhosts.IsHostKeyChanged(err) {
			var ke *xknownhosts.KeyError
			errors.As(err, &ke)
			var where []string
			for _, w := range ke.Want {
				where = append(where, fmt.Sprintf("%s:%d (%s %s)", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key)))
			}
			return fmt.Errorf("HOST KEY CHANGED for %s: it offered %s but known_hosts has %s; if the host was really re-keyed, remove that line, otherwise someone may be intercepting the connection",
				hostname, offered, strings.Join(where, ", "))
		}
		if knownhosts.IsHostUnknown(err) {
			if !cfg.AcceptNewHostKeys {
				return fmt.Errorf("unknown host key for %s (offered %s): it is not in %s; add it there (ssh-keyscan, checked out of band) or set accept_new_host_keys = true", hostname, offered, file)
			}
			return p.recordHostKey(file, hostname, key, cfg.HashKnownHosts)
		}
		if strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "ssh: ") {
			return fmt.Errorf("host key of %s (offered %s) rejected: %w (known_hosts %s)", hostname, offered, err, file)
		}
		return fmt.Errorf("host key of %s (offered %s): %w (known_hosts %s)", hostname, offered, err, file)
	}
	return cb, db.HostKeyAlgorithms(cfg.addr()), nil
}

// recordHostKey appends a newly accepted key (accept_new_host_keys),
// hashed as `ssh-keygen -H` would when hash is set (HashKnownHosts) or the
// file already holds hashed names, so that it does not list the hosts.
func (p *Pool) recordHostKey(file, hostname string, key ssh.PublicKey, hash bool) error {
	p.khMu.Lock()
	defer p.khMu.Unlock()
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("recording the new host key: %w", err)
	}
	var buf bytes.Buffer
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	if hash || bytes.HasPrefix(old, []byte("|1|")) || bytes.Contains(old, []byte("\n|1|")) {
		buf.WriteString(xknownhosts.HashHostname(knownhosts.Normalize(hostname)) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
	} else {
		buf.WriteString(knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
	}
	buf.WriteByte('\n')
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("recording the new host key in %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// poolState is what a Pool guards with its mutex.
type poolState struct {
	mu      sync.Mutex
	signers map[string]ssh.Signer
	targets map[string]*Target
	closed  bool
	khMu    sync.Mutex
}
