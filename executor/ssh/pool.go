package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/upgrader-dev/upgrader/modules"
)

// Pool holds one SSH connection per host for the whole run.
type Pool struct {
	opts Options
	poolState
}

// NewPool returns an empty pool; Target connects hosts, Close disconnects them.
func NewPool(opts Options) *Pool {
	return &Pool{opts: opts.withDefaults(), poolState: poolState{
		signers: map[string]ssh.Signer{},
		targets: map[string]*Target{},
	}}
}

// Error is a transport failure on a named host.
type Error struct {
	Host string
	Op   string // "connect", "run", "write /etc/app/app.conf", ...
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("host %q: %s: %v", e.Host, e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// HostName makes it a host error for modules.ErrorHost and modules.OnHost.
func (e *Error) HostName() string { return e.Host }

// Target connects to the named host (or returns its pooled connection) and
// returns its modules.Target. The connection lives until Pool.Close.
func (p *Pool) Target(ctx context.Context, name string, cfg Config) (modules.Target, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &Error{Host: name, Op: "connect", Err: errors.New("connection pool is closed")}
	}
	if t, ok := p.targets[name]; ok {
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	t := &Target{pool: p, name: name, cfg: cfg}
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.SudoPassword != "" {
		if err := c.checkSudo(ctx, cfg.User, cfg.SudoPassword); err != nil {
			t.close()
			return nil, t.errf("sudo check", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.targets[name]; ok { // lost a race: keep the first
		t.close()
		return old, nil
	}
	if p.closed {
		t.close()
		return nil, &Error{Host: name, Op: "connect", Err: errors.New("connection pool is closed")}
	}
	p.targets[name] = t
	return t, nil
}

// checkSudo verifies the sudo password read-only (`sudo -v`, cached
// credentials ignored) when the host is connected, so that a wrong one is a
// clear error at plan instead of every sudo command failing later. With
// stdin at its end after one line, sudo -S cannot wait for another try.
func (c *conn) checkSudo(ctx context.Context, user, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sess, err := c.newSession(ctx)
	if err != nil {
		return err
	}
	defer c.release()
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stdin = strings.NewReader(password + "\n")
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run("sudo -k -S -p '' -v") }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("sudo -v did not finish within 30s")
	}
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(stderr.String()), " ")
	switch {
	case strings.Contains(msg, "incorrect password") || strings.Contains(msg, "try again"):
		return fmt.Errorf("sudo_password was not accepted: sudo -v as %q said %q", user, msg)
	case msg == "":
		return fmt.Errorf("sudo -v as %q with sudo_password: %w", user, err)
	}
	return fmt.Errorf("sudo -v as %q with sudo_password failed: %s", user, msg)
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	ts := p.targets
	p.targets = map[string]*Target{}
	p.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
	return nil
}

// Target is one host's modules.Target.
type Target struct {
	pool *Pool
	name string
	cfg  Config

	mu sync.Mutex
	c  *conn
	// left are the private directories of writes cut with their connection
	// ([dir, file] pairs): the next connection removes them.
	left [][2]string
}

var _ modules.Target = (*Target)(nil)

func (t *Target) leave(priv, tmp string) {
	t.mu.Lock()
	t.left = append(t.left, [2]string{priv, tmp})
	t.mu.Unlock()
}

// removeLeft removes what cut writes left (t.mu held): a partial file in
// a directory of our own, never through a name that is not that directory.
func (t *Target) removeLeft(ctx context.Context, c *conn) {
	if len(t.left) == 0 {
		return
	}
	cl, err := c.sftpClient(ctx)
	if err != nil {
		return
	}
	for _, l := range t.left {
		if fi, err := cl.Lstat(l[0]); err == nil && fi.IsDir() {
			cl.Remove(l[1])
			cl.RemoveDirectory(l[0])
		}
	}
	t.left = nil
}

// Host reports the host as configured.
func (t *Target) Host() modules.HostInfo {
	return modules.HostInfo{Name: t.name, Address: t.cfg.Address, Port: t.cfg.port(), User: t.cfg.User}
}

func (t *Target) errf(op string, err error) error {
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	return &Error{Host: t.name, Op: op, Err: err}
}

func (t *Target) close() {
	t.mu.Lock()
	c := t.c
	t.mu.Unlock()
	if c != nil {
		c.kill(errors.New("connection closed"))
	}
}

// conn returns the live connection, dialing when there is none or the last
// one died (the "reconnect once": each call redials at most once).
func (t *Target) conn(ctx context.Context) (*conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil && t.c.alive() {
		return t.c, nil
	}
	c, err := t.pool.dial(ctx, t.name, t.cfg)
	if err != nil {
		return nil, t.errf("connect "+t.cfg.User+"@"+t.cfg.addr(), err)
	}
	t.c = c
	t.removeLeft(ctx, c)
	return c, nil
}

// errNotStarted marks a failure before anything reached the host: safe to
// retry on a new connection.
var errNotStarted = errors.New("not started")

type notStarted struct{ error }

func (notStarted) Is(target error) bool { return target == errNotStarted }
func (e notStarted) Unwrap() error      { return e.error }

// do runs fn on the connection; when the connection died under it, it
// reconnects once and runs fn again if retry is set or fn did not start.
func (t *Target) do(ctx context.Context, op string, retry bool, fn func(c *conn) error) error {
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	err = fn(c)
	if err != nil && errors.Is(err, errNotStarted) && c.alive() && brokenTransport(err) {
		// Noticed before the reader goroutine did: nothing was started, so
		// close it now and take the reconnect path.
		c.kill(err)
	}
	if err != nil && !c.alive() && ctx.Err() == nil && (retry || errors.Is(err, errNotStarted)) {
		c2, err2 := t.conn(ctx)
		if err2 != nil {
			var he *Error
			if errors.As(err2, &he) {
				err2 = fmt.Errorf("%s: %w", he.Op, he.Err)
			}
			return t.errf(op, fmt.Errorf("%w; reconnect failed: %v", c.err(), err2))
		}
		err = fn(c2)
	}
	if err != nil {
		if !c.alive() && !strings.Contains(err.Error(), c.err().Error()) && ctx.Err() == nil {
			err = fmt.Errorf("%w (%v)", err, c.err())
		}
		return t.errf(op, err)
	}
	return nil
}

// brokenTransport reports an error of the connection itself (not a refusal
// by the server, not a cancellation).
func brokenTransport(err error) bool {
	var oe *ssh.OpenChannelError
	if errors.As(err, &oe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	msg := err.Error()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "use of closed network connection")
}

// ---------------------------------------------------------------------------
// One connection

type conn struct {
	host     string
	client   *ssh.Client
	jumps    []*ssh.Client // the jump chain, first hop first
	opts     Options
	sessions chan struct{} // semaphore: at most MaxSessions open sessions

	sudoPassword string // for the kill command of a sudo command

	once    sync.Once
	done    chan struct{}
	mu      sync.Mutex
	deadErr error

	shellTokens chan struct{} // one per live shell
	idle        chan *shell

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadErr
}

// kill marks the connection dead with the reason and closes it.
func (c *conn) kill(reason error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.deadErr = fmt.Errorf("connection lost: %w", reason)
		c.mu.Unlock()
		close(c.done)
		c.client.Close()
		for i := len(c.jumps) - 1; i >= 0; i-- {
			c.jumps[i].Close()
		}
	})
}

// acquire takes a session slot.
func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.sessions <- struct{}{}:
		return nil
	case <-ctx.Done():
		return notStarted{ctx.Err()}
	case <-c.done:
		return notStarted{c.err()}
	}
}

func (c *conn) release() { <-c.sessions }

// newSession opens a session within the MaxSessions bound; call release
// after closing it.
func (c *conn) newSession(ctx context.Context) (*ssh.Session, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	// sshd frees a closed session only after it processed our close; a new
	// session right behind it can be refused ("open failed") though we keep
	// under MaxSessions. And a server's MaxSessions may be below ours: then
	// an idle shell gives its session up, or we wait for one of the others
	// to end. Refused with nothing else open, it is the server's "no".
	start := time.Now()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		s, err := c.client.NewSession()
		if err == nil {
			return s, nil
		}
		var oe *ssh.OpenChannelError
		refused := errors.As(err, &oe) && oe.Reason == ssh.ConnectionFailed
		if refused {
			select {
			case sh := <-c.idle:
				c.dropShell(sh)
				continue
			default:
			}
		}
		if !refused || (len(c.sessions) <= 1 && time.Since(start) > time.Second) {
			c.release()
			return nil, notStarted{fmt.Errorf("new session: %w", err)}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			c.release()
			return nil, notStarted{ctx.Err()}
		case <-c.done:
			c.release()
			return nil, notStarted{c.err()}
		}
	}
}

func (p *Pool) dial(ctx context.Context, name string, cfg Config) (*conn, error) {
	if cfg.Address == "" {
		return nil, errors.New("no address")
	}
	if cfg.User == "" {
		return nil, errors.New("no user")
	}
	hops, err := cfg.hops()
	if err != nil {
		return nil, err
	}
	// Each hop's client dials the next hop, the last one the host.
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
	}
	var nc net.Conn
	dialNext := func(via *ssh.Client, viaName string, next Config) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, next.timeout())
		defer cancel()
		nc, err := via.DialContext(dctx, "tcp", next.addr())
		if err != nil {
			return nil, fmt.Errorf("through jump host %s to %s: %w", viaName, next.addr(), err)
		}
		return nc, nil
	}
	for i, hop := range hops {
		if i > 0 {
			if nc, err = dialNext(jumps[i-1], hops[i-1].hopName(), hop); err != nil {
				closeJumps()
				return nil, err
			}
		}
		j, err := p.handshake(ctx, hop, nc)
		if err != nil {
			closeJumps()
			if cfg.Bastion != "" {
				return nil, fmt.Errorf("bastion %s: %w", cfg.Bastion, err)
			}
			return nil, fmt.Errorf("jump host %s: %w", hop.hopName(), err)
		}
		jumps = append(jumps, j)
		nc = nil
	}
	if len(jumps) > 0 {
		if nc, err = dialNext(jumps[len(jumps)-1], hops[len(hops)-1].hopName(), cfg); err != nil {
			closeJumps()
			if cfg.Bastion != "" {
				return nil, fmt.Errorf("through bastion %s: %w", cfg.Bastion, err)
			}
			return nil, err
		}
	}
	client, err := p.handshake(ctx, cfg, nc)
	if err != nil {
		closeJumps()
		return nil, err
	}
	c := &conn{
		host: name, client: client, jumps: jumps, opts: p.opts, sudoPassword: cfg.SudoPassword,
		sessions:    make(chan struct{}, p.opts.MaxSessions),
		done:        make(chan struct{}),
		shellTokens: make(chan struct{}, p.opts.MaxShells),
		idle:        make(chan *shell, p.opts.MaxShells),
	}
	go func() {
		err := client.Wait()
		if err == nil {
			err = errors.New("closed by the remote side")
		}
		c.kill(err)
	}()
	for i, j := range jumps {
		go func() {
			j.Wait()
			c.kill(fmt.Errorf("jump host %s closed", hops[i].hopName()))
		}()
	}
	go c.keepalive()
	return c, nil
}

// handshake connects to cfg's address (over nc when given, e.g. through a
// bastion) and authenticates, all within cfg's timeout and ctx.
func (p *Pool) handshake(ctx context.Context, cfg Config, nc net.Conn) (*ssh.Client, error) {
	auth, closeAgent, err := p.authMethods(cfg)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	defer closeAgent()
	hostKey, algos, err := p.hostKeyCheck(cfg)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	if nc == nil {
		d := net.Dialer{KeepAlive: 15 * time.Second}
		nc, err = d.DialContext(ctx, "tcp", cfg.addr())
		if err != nil {
			var ne net.Error
			if ctx.Err() == context.DeadlineExceeded || errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("no answer within %v (host down or link cut?): %w", cfg.timeout(), err)
			}
			return nil, err
		}
	}
	conf := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.timeout(),
	}
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(nc, cfg.addr(), conf)
		ch <- result{c, chans, reqs, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			nc.Close()
			return nil, explainHandshake(r.err, cfg)
		}
		return ssh.NewClient(r.c, r.chans, r.reqs), nil
	case <-ctx.Done():
		nc.Close()
		<-ch
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("SSH handshake did not finish within %v", cfg.timeout())
		}
		return nil, ctx.Err()
	}
}

func explainHandshake(err error, cfg Config) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate"):
		return fmt.Errorf("authentication failed for user %q with key file(s) %v (agent: %v): the host does not accept them: %w", cfg.User, cfg.PrivateKeyFiles, cfg.Agent, err)
	case strings.Contains(msg, "connection reset"), strings.Contains(msg, "EOF"):
		return fmt.Errorf("the server closed the connection during the handshake: %w", err)
	}
	return err
}

// keepalive sends keepalive@openssh.com every interval and kills the
// connection when no reply came for interval*max: x/crypto/ssh has no
// keepalives, and a silently dead link would otherwise hang every call.
func (c *conn) keepalive() {
	iv := c.opts.KeepaliveInterval
	limit := iv * time.Duration(c.opts.KeepaliveMax)
	tick := time.NewTicker(iv)
	defer tick.Stop()
	last := time.Now()
	var pending chan error
	for {
		select {
		case <-c.done:
			return
		case err := <-pending:
			pending = nil
			if err != nil {
				c.kill(fmt.Errorf("keepalive: %w", err))
				return
			}
			last = time.Now()
		case <-tick.C:
			if time.Since(last) >= limit {
				c.kill(fmt.Errorf("no reply to keepalives for %v (link down or host hung)", limit.Round(time.Second)))
				return
			}
			if pending == nil {
				pending = make(chan error, 1)
				go func(ch chan error) {
					_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
					ch <- err
				}(pending)
			}
		}
	}
}

// sftpClient returns the connection's SFTP client, started on first use.
func (c *conn) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	cl, err := sftp.NewClient(c.client,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		c.release()
		return nil, notStarted{fmt.Errorf("sftp: %w", err)}
	}
	c.sftp = cl
	return cl, nil
}

// Dial opens a connection from the host to addr (an SSH tunnel).
func (t *Target) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nc net.Conn
	err := t.do(ctx, "dial "+addr, true, func(c *conn) error {
		var err error
		nc, err = c.client.DialContext(ctx, network, addr)
		if err != nil && !c.alive() {
			return notStarted{err}
		}
		return err
	})
	return nc, err
}
