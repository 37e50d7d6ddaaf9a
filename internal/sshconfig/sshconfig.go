// Package sshconfig reads the settings of one host from an OpenSSH client
// configuration file (~/.ssh/config), with where each came from, on top of
// github.com/kevinburke/ssh_config's parser.
//
// Supported: Host (patterns, negation), Match host / Match all, HostName
// (%h, %%), User, Port, IdentityFile (several; ~, %d, %u, %r, %h, %%),
// IdentitiesOnly, ProxyJump (a chain of hops, each resolved here as its own
// alias), UserKnownHostsFile (the first file), HashKnownHosts,
// ConnectTimeout, and Include (values, without their line). The first
// value of a keyword wins, as in ssh(1). Not supported (a parse error names
// the line): Match exec, user, localuser, originalhost, canonical, final;
// ignored: ProxyCommand, CanonicalizeHostname and every other keyword.
package sshconfig

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
)

// Setting is one effective value and where it came from.
type Setting struct {
	Value string
	Line  int // 0: from an Include'd file (line unknown)
}

// Origin is "ssh_config line N" (or "ssh_config Include").
func (s Setting) Origin() string {
	if s.Line == 0 {
		return "ssh_config Include"
	}
	return fmt.Sprintf("ssh_config line %d", s.Line)
}

// Host is what the file says about one alias; a nil map entry means the
// file does not set it.
type Host struct {
	Alias    string
	Settings map[string]Setting // lower-case keyword: hostname, user, port, ...
	Identity []Setting          // IdentityFile, in order
}

// Get returns the keyword's setting.
func (h *Host) Get(key string) (Setting, bool) {
	s, ok := h.Settings[key]
	return s, ok
}

// File is a parsed configuration file.
type File struct {
	Path string
	cfg  *sshconfig.Config
}

// keywords is what Resolve reports (lower case).
var keywords = []string{"hostname", "user", "port", "identitiesonly", "proxyjump", "userknownhostsfile", "hashknownhosts", "connecttimeout"}

// Parse reads path. A missing file is an error wrapping os.ErrNotExist.
func Parse(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := sshconfig.DecodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, tidy(err))
	}
	return &File{Path: path, cfg: cfg}, nil
}

// tidy turns the parser's "(L, C): msg" into "line L: msg".
func tidy(err error) string {
	msg := err.Error()
	var l, c int
	if n, _ := fmt.Sscanf(msg, "(%d, %d):", &l, &c); n == 2 {
		if i := strings.Index(msg, "):"); i >= 0 {
			return fmt.Sprintf("line %d:%s", l, strings.TrimPrefix(msg[i+2:], " ssh_config:"))
		}
	}
	return msg
}

// isMatch reports a Match block (the parser keeps that private; its text
// form starts with the keyword).
func isMatch(h *sshconfig.Host) bool {
	return strings.HasPrefix(strings.TrimSpace(h.String()), "Match")
}

// Resolve returns the settings for alias. Host blocks match the alias; Match
// host blocks match the host name known so far (HostName, else the alias),
// as ssh(1) does.
func (f *File) Resolve(alias string) *Host {
	h := &Host{Alias: alias, Settings: map[string]Setting{}}
	for _, blk := range f.cfg.Hosts {
		subject := alias
		if isMatch(blk) {
			if hn, ok := h.Settings["hostname"]; ok {
				subject = hn.Value
			}
		}
		if !blk.Matches(subject) {
			continue
		}
		for _, node := range blk.Nodes {
			switch n := node.(type) {
			case *sshconfig.KV:
				h.set(strings.ToLower(n.Key), n.Value, n.Pos().Line)
			case *sshconfig.Include:
				for _, k := range keywords {
					if _, done := h.Settings[k]; !done {
						if v := n.Get(alias, k); v != "" {
							h.set(k, v, 0)
						}
					}
				}
				if v, _ := n.GetAll(alias, "identityfile"); len(v) > 0 {
					for _, id := range v {
						h.Identity = append(h.Identity, Setting{Value: id})
					}
				}
			}
		}
	}
	return h
}

func (h *Host) set(key, value string, line int) {
	if key == "identityfile" {
		h.Identity = append(h.Identity, Setting{Value: value, Line: line})
		return
	}
	for _, k := range keywords {
		if k == key {
			if _, done := h.Settings[key]; !done {
				h.Settings[key] = Setting{Value: value, Line: line}
			}
			return
		}
	}
}

// Expand replaces ssh_config's tokens in a file name: ~ and %d (the local
// home), %u (the local user), %r (the remote user), %h (the host name), %%.
func Expand(s, remoteUser, hostName string) (string, error) {
	home, _ := os.UserHomeDir()
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = filepath.Join(home, s[1:])
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("%q ends with a lone %%", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(home)
		case 'u':
			b.WriteString(local)
		case 'r':
			b.WriteString(remoteUser)
		case 'h':
			b.WriteString(hostName)
		default:
			return "", fmt.Errorf("%q: token %%%c is not supported (only %%d %%u %%r %%h %%%%)", s, s[i])
		}
	}
	return b.String(), nil
}

// Jump is one hop of a ProxyJump chain as written: [user@]host[:port].
type Jump struct {
	User, Host string
	Port       int // 0 when not given
}

// ParseJumps parses a ProxyJump value; "none" is no chain.
func ParseJumps(v string) ([]Jump, error) {
	if strings.EqualFold(strings.TrimSpace(v), "none") {
		return nil, nil
	}
	var out []Jump
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "ssh://")
		var j Jump
		if i := strings.LastIndex(part, "@"); i >= 0 {
			j.User, part = part[:i], part[i+1:]
		}
		host, port := part, ""
		if strings.HasPrefix(part, "[") {
			if i := strings.Index(part, "]"); i > 0 {
				host, port = part[1:i], strings.TrimPrefix(part[i+1:], ":")
			}
		} else if i := strings.LastIndex(part, ":"); i >= 0 && strings.Count(part, ":") == 1 {
			host, port = part[:i], part[i+1:]
		}
		if host == "" {
			return nil, errors.New("ProxyJump: empty hop in " + strconv.Quote(v))
		}
		j.Host = host
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("ProxyJump: bad port in %q", v)
			}
			j.Port = p
		}
		out = append(out, j)
	}
	return out, nil
}
