// Package pgstore keeps run state in PostgreSQL (issue 16), so that a team
// shares it: every machine with the DSN and the configuration sees, approves,
// resumes and rolls back the same runs.
//
// One row per event, committed before Append returns. The run lock is a
// lease: a row per workspace holding (epoch, run, holder, expires), renewed
// by the holder every few seconds; every write checks the epoch under a
// share lock of that row (fencing), so a holder that lost its lease writes
// nothing. Times are the database's (now()), never a machine's clock.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
)

// Options open a store.
type Options struct {
	DSN       string // secret: never in an error, a row or argv
	Schema    string // default "upgrader"
	Workspace string // the state block's name
	// Lease is how long a silent holder keeps the lock (default 60s).
	Lease time.Duration
	// Retry bounds how long a write waits for an unreachable database
	// before it fails (default 2m).
	Retry time.Duration
	// Me describes this process as a holder (default runstore.Me); tests
	// give two "machines" in one process.
	Me func(run string) runstore.Holder
}

// Store is a workspace in a PostgreSQL schema.
type Store struct {
	pool       *pgxpool.Pool
	schema     string // quoted
	schemaName string
	ws         string
	lease      time.Duration
	retry      time.Duration
	me         func(string) runstore.Holder
	password   string
}

var (
	schemaRE    = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	workspaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
)

// ValidSchema and ValidWorkspace say what names the state block accepts.
func ValidSchema(s string) bool    { return schemaRE.MatchString(s) }
func ValidWorkspace(s string) bool { return workspaceRE.MatchString(s) }

// DefaultLease is the lease when the state block sets none.
const DefaultLease = 60 * time.Second

// Open connects, creates or migrates the schema and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Schema == "" {
		o.Schema = "upgrader"
	}
	if !ValidSchema(o.Schema) {
		return nil, fmt.Errorf("state schema %q: use lower-case letters, digits and _ (at most 63)", o.Schema)
	}
	if !ValidWorkspace(o.Workspace) {
		return nil, fmt.Errorf("state name %q: use letters, digits, '.', '_' and '-' (at most 100)", o.Workspace)
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Minute
	}
	if o.Me == nil {
		o.Me = runstore.Me
	}
	s := &Store{schema: quoteIdent(o.Schema), schemaName: o.Schema, ws: o.Workspace, lease: o.Lease, retry: o.Retry, me: o.Me, password: dsnPassword(o.DSN)}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("state dsn does not parse as a PostgreSQL connection string: %s", s.redact(err.Error(), o.DSN))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["application_name"] = "upgrader"
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.explain(err)
	}
	if err := s.do(ctx, func(ctx context.Context) error { return s.migrate(ctx) }); err != nil {
		s.pool.Close()
		return nil, s.explain(err)
	}
	return s, nil
}

var _ runstore.Store = (*Store)(nil)

func (s *Store) Where() string { return fmt.Sprintf("postgres workspace %q", s.ws) }

func (s *Store) Close() error { s.pool.Close(); return nil }

// Lease is the store's lease duration.
func (s *Store) Lease() time.Duration { return s.lease }

// q expands %[1]s to the quoted schema.
func (s *Store) q(sql string) string { return fmt.Sprintf(sql, s.schema) }

// ---------------------------------------------------------------------------
// Errors and retries

// explain names the store and hides the DSN's password.
func (s *Store) explain(err error) error {
	if err == nil {
		return nil
	}
	var lost *runstore.LostError
	var le *runstore.LockedError
	if errors.As(err, &lost) || errors.As(err, &le) || errors.Is(err, runstore.ErrNoRun) {
		return err
	}
	msg := s.redact(err.Error(), "")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("state database: login refused (wrong user or password): %s", s.redact(pgErr.Message, ""))
		}
		return fmt.Errorf("state database (%s): %s", s.Where(), s.redact(pgErr.Message, ""))
	}
	if transient(err) {
		if i := strings.LastIndex(msg, ": dial error: "); i >= 0 {
			msg = msg[i+2:]
		} else if i := strings.Index(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
		return fmt.Errorf("state database is not reachable (%s): %s", s.Where(), msg)
	}
	return fmt.Errorf("state database (%s): %s", s.Where(), msg)
}

func (s *Store) redact(msg, dsn string) string {
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "(dsn)")
	}
	if len(s.password) >= 3 {
		msg = strings.ReplaceAll(msg, s.password, "xxxxx")
	}
	return msg
}

// dsnPassword extracts the password of a URL or key=value DSN.
func dsnPassword(dsn string) string {
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		return cfg.Password
	}
	return ""
}

// transient: the database went away or is restarting; the same statement
// may succeed later.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300" || c == "40001" || c == "40P01"
	}
	var ne net.Error
	if errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	m := err.Error()
	for _, s := range []string{"conn closed", "connection refused", "failed to connect", "unexpected EOF", "broken pipe", "connection reset", "closed pool", "shutting down", "the database system is"} {
		if strings.Contains(m, s) {
			return !strings.Contains(m, "closed pool")
		}
	}
	return false
}

// do runs fn, again while the database is unreachable, for up to s.retry.
// fn must be safe to repeat (each caller makes it so).
func (s *Store) do(ctx context.Context, fn func(context.Context) error) error {
	deadline := time.Now().Add(s.retry)
	wait := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if wait *= 2; wait > 2*time.Second {
			wait = 2 * time.Second
		}
	}
}

// ---------------------------------------------------------------------------
// Runs and events

func (s *Store) Runs(ctx context.Context) ([]string, error) {
	var out []string
	err := s.do(ctx, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, s.q(`SELECT run FROM %[1]s.runs WHERE workspace = $1 ORDER BY run`), s.ws)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, s.explain(err)
}

func (s *Store) runExists(ctx context.Context, run string) (bool, error) {
	var ok bool
	err := s.do(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM %[1]s.runs WHERE workspace = $1 AND run = $2)`), s.ws, run).Scan(&ok)
	})
	return ok, err
}

func (s *Store) noRun(run string) error {
	return fmt.Errorf("no run %s in %s: %w", run, s.Where(), runstore.ErrNoRun)
}

func (s *Store) Events(ctx context.Context, run string) ([]runstore.Event, *runstore.Torn, error) {
	if !runstore.ValidRunID(run) {
		return nil, nil, fmt.Errorf("%q is not a run id: %w", run, runstore.ErrNoRun)
	}
	var evs []runstore.Event
	var exists bool
	err := s.do(ctx, func(ctx context.Context) error {
		evs, exists = nil, false
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if err := tx.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM %[1]s.runs WHERE workspace = $1 AND run = $2)`), s.ws, run).Scan(&exists); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, s.q(`SELECT seq, line FROM %[1]s.events WHERE workspace = $1 AND run = $2 ORDER BY seq`), s.ws, run)
		if err != nil {
			return err
		}
		var seq int64
		var line []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &line}, func() error {
			var ev runstore.Event
			if err := json.Unmarshal(line, &ev); err != nil || ev.Type == "" {
				return fmt.Errorf("run %s: event %d does not decode: the state database was changed by hand", run, seq)
			}
			evs = append(evs, ev)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, nil, s.explain(err)
	}
	if !exists {
		return nil, nil, s.noRun(run)
	}
	where := fmt.Sprintf("run %s in %s", run, s.Where())
	if len(evs) == 0 {
		return nil, nil, &runstore.EmptyError{Path: where}
	}
	if evs[0].Type != journal.RunStarted {
		return nil, nil, fmt.Errorf("journal of %s: the first event is %s, not %s: the journal is damaged", where, evs[0].Type, journal.RunStarted)
	}
	return evs, nil, nil
}

// ---------------------------------------------------------------------------
// The lease

const holderCols = `l.run, l.holder, l.epoch, l.since, l.expires, l.expires < now()`

func (s *Store) scanHolder(row pgx.Row) (*runstore.Holder, bool, error) {
	var run *string
	var hj []byte
	var epoch int64
	var since, expires *time.Time
	var stale *bool
	if err := row.Scan(&run, &hj, &epoch, &since, &expires, &stale); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if run == nil {
		return nil, false, nil
	}
	var h runstore.Holder
	if err := json.Unmarshal(hj, &h); err != nil {
		return nil, false, fmt.Errorf("lease holder: %w", err)
	}
	h.Run, h.Epoch = *run, epoch
	if since != nil {
		h.Since = since.UTC()
	}
	if expires != nil {
		h.Expires = expires.UTC()
	}
	return &h, stale != nil && *stale, nil
}

func (s *Store) Holder(ctx context.Context) (*runstore.Holder, bool, error) {
	var h *runstore.Holder
	var stale bool
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		h, stale, err = s.scanHolder(s.pool.QueryRow(ctx, s.q(`SELECT `+holderCols+` FROM %[1]s.locks l WHERE l.workspace = $1`), s.ws))
		return err
	})
	return h, stale, s.explain(err)
}

func (s *Store) Lock(ctx context.Context, run string) (runstore.Lock, error) {
	return s.acquire(ctx, run, false)
}

func (s *Store) TakeOver(ctx context.Context, run string) (runstore.Lock, error) {
	return s.acquire(ctx, run, true)
}

// acquire is one statement: the row is created, or taken when free (or,
// for a takeover, held by run with an expired lease). Concurrent takers
// serialise on the row; the condition is re-checked after a concurrent
// update, so exactly one of them wins.
func (s *Store) acquire(ctx context.Context, run string, takeover bool) (runstore.Lock, error) {
	if !runstore.ValidRunID(run) {
		return nil, fmt.Errorf("%q is not a run id", run)
	}
	me := s.me(run)
	me.Epoch, me.Expires = 0, time.Time{}
	hj, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	cond := `l.run IS NULL`
	if takeover {
		cond = `l.run IS NULL OR (l.run = $2 AND l.expires < now())`
	}
	sql := s.q(`INSERT INTO %[1]s.locks AS l (workspace, epoch, run, holder, since, expires)
		VALUES ($1, 1, $2, $3, now(), now() + $4 * interval '1 millisecond')
		ON CONFLICT (workspace) DO UPDATE SET epoch = l.epoch + 1, run = $2, holder = $3, since = now(), expires = now() + $4 * interval '1 millisecond'
		WHERE ` + cond + `
		RETURNING l.epoch, l.since, l.expires`)
	var epoch int64
	var since, expires time.Time
	won := false
	err = s.do(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, sql, s.ws, run, hj, s.lease.Milliseconds()).Scan(&epoch, &since, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil {
			won = true
		} else if transient(err) {
			// The statement may have committed before the connection
			// dropped: if the row now holds our holder, it is ours.
			if h, _, herr := s.Holder(ctx); herr == nil && h != nil && h.Run == run && h.PID == me.PID && h.Host == me.Host && h.Start == me.Start {
				epoch, since, expires, won = h.Epoch, h.Since, h.Expires, true
				return nil
			}
		}
		return err
	})
	if err != nil {
		return nil, s.explain(err)
	}
	if !won {
		h, stale, err := s.Holder(ctx)
		if err != nil {
			return nil, err
		}
		if h == nil { // released meanwhile: try once more
			return s.acquire(ctx, run, takeover)
		}
		return nil, &runstore.LockedError{Path: s.Where(), Holder: *h, Stale: stale, What: s.Where()}
	}
	me.Epoch, me.Since, me.Expires = epoch, since.UTC(), expires.UTC()
	l := &lock{s: s, h: me, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l, nil
}

func (s *Store) Unlock(ctx context.Context, force bool) (*runstore.Holder, error) {
	h, stale, err := s.Holder(ctx)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%s is not locked", s.Where())
	}
	if !force && !stale {
		return h, fmt.Errorf("lock held by %s@%s (pid %d, run %s), whose lease is renewed until %s: upgrader cannot tell whether it is alive; use -force if you are sure it is not",
			h.User, h.Host, h.PID, h.Run, h.Expires.Local().Format(time.RFC3339))
	}
	// The epoch grows so that the forced-out holder is fenced even if nobody takes the lock.
	err = s.do(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.q(`UPDATE %[1]s.locks SET epoch = epoch + 1, run = NULL, holder = NULL, since = NULL, expires = NULL WHERE workspace = $1 AND epoch = $2`), s.ws, h.Epoch)
		return err
	})
	return h, s.explain(err)
}

// lock is a held lease.
type lock struct {
	s        *Store
	h        runstore.Holder
	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (l *lock) Holder() runstore.Holder { return l.h }
func (l *lock) Lost() <-chan struct{}   { return l.lost }

func (l *lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// renewInterval: a few renewals per lease, at most every 5 s.
func (l *lock) renewInterval() time.Duration {
	d := l.s.lease / 6
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}

// renew extends the lease until Release. A lease that expired is lost,
// whether or not someone took it over since: the holder was silent for
// longer than it promised, so another machine may be acting on the run.
// A database that does not answer is tried again until then.
func (l *lock) renew() {
	defer close(l.done)
	t := time.NewTicker(l.renewInterval())
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.renewInterval()+5*time.Second)
		tag, err := l.s.pool.Exec(ctx, l.s.q(`UPDATE %[1]s.locks SET expires = now() + $3 * interval '1 millisecond' WHERE workspace = $1 AND epoch = $2 AND run IS NOT NULL AND expires > now()`),
			l.s.ws, l.h.Epoch, l.s.lease.Milliseconds())
		cancel()
		if err == nil && tag.RowsAffected() == 0 {
			l.markLost()
			return
		}
	}
}

func (l *lock) stopRenew() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// Release frees the lease if it is still ours (same epoch).
func (l *lock) Release() error {
	l.stopRenew()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.s.do(ctx, func(ctx context.Context) error {
		_, err := l.s.pool.Exec(ctx, l.s.q(`UPDATE %[1]s.locks SET run = NULL, holder = NULL, since = NULL, expires = NULL WHERE workspace = $1 AND epoch = $2`), l.s.ws, l.h.Epoch)
		return err
	})
	return l.s.explain(err)
}

// lostError names the new holder.
func (l *lock) lostError() error {
	l.markLost()
	e := &runstore.LostError{Run: l.h.Run}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h, _, err := l.s.Holder(ctx); err == nil && h != nil {
		e.Now = h
	}
	return e
}

// fence is the share-locked lease row, present only while this holder
// owns it: a takeover (an UPDATE of the row) waits for the statement.
const fence = `WITH lease AS (SELECT 1 FROM %[1]s.locks WHERE workspace = $1 AND epoch = $2 AND run = $3 AND expires > now() FOR SHARE) `

func (l *lock) Create(ctx context.Context) (runstore.Journal, error) {
	s := l.s
	var n int64
	err := s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.q(fence+`INSERT INTO %[1]s.runs (workspace, run) SELECT $1, $3 FROM lease ON CONFLICT DO NOTHING`), s.ws, l.h.Epoch, l.h.Run)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return nil, s.explain(err)
	}
	if n == 0 {
		exists, err := s.runExists(ctx, l.h.Run)
		if err != nil {
			return nil, s.explain(err)
		}
		if exists {
			return nil, fmt.Errorf("run %s already exists in %s", l.h.Run, s.Where())
		}
		return nil, l.lostError()
	}
	return &pgJournal{l: l, next: 1}, nil
}

func (l *lock) Open(ctx context.Context) (runstore.Journal, *runstore.Torn, error) {
	s := l.s
	var last *int64
	var exists bool
	err := s.do(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM %[1]s.runs WHERE workspace = $1 AND run = $2),
			(SELECT max(seq) FROM %[1]s.events WHERE workspace = $1 AND run = $2)`), s.ws, l.h.Run).Scan(&exists, &last)
	})
	if err != nil {
		return nil, nil, s.explain(err)
	}
	if !exists {
		return nil, nil, s.noRun(l.h.Run)
	}
	next := int64(1)
	if last != nil {
		next = *last + 1
	}
	return &pgJournal{l: l, next: next}, nil, nil // a transaction is never torn
}

// ---------------------------------------------------------------------------
// The journal: group commit of concurrent appends, one statement per batch.

type pgJournal struct {
	l *lock

	mu      sync.Mutex
	next    int64 // seq of the next event
	queue   []*pending
	writing bool
	err     error // sticky: after a failure nothing more is written
}

type pending struct {
	seq  int64
	typ  string
	line string
	done chan error
}

func (j *pgJournal) Append(ev runstore.Event) error {
	if ev.TS.IsZero() {
		ev.TS = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: encoding %s event: %w", ev.Type, err)
	}
	p := &pending{typ: ev.Type, line: string(b), done: make(chan error, 1)}
	j.mu.Lock()
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		return err
	}
	p.seq = j.next
	j.next++
	j.queue = append(j.queue, p)
	if j.writing {
		j.mu.Unlock()
		return <-p.done
	}
	j.writing = true
	for len(j.queue) > 0 && j.err == nil {
		batch := j.queue
		j.queue = nil
		j.mu.Unlock()
		werr := j.write(batch)
		j.mu.Lock()
		if werr != nil {
			j.err = werr
		}
		for _, q := range batch {
			q.done <- werr
		}
	}
	for _, q := range j.queue { // failed: the rest is refused
		q.done <- j.err
	}
	j.queue = nil
	j.writing = false
	j.mu.Unlock()
	return <-p.done
}

// write inserts a batch in one fenced statement, again while the database
// is unreachable. A retry after a commit whose answer was lost finds its
// rows already there (same seq, same line) and counts as done.
func (j *pgJournal) write(batch []*pending) error {
	l, s := j.l, j.l.s
	seqs := make([]int64, len(batch))
	types := make([]string, len(batch))
	lines := make([]string, len(batch))
	for i, p := range batch {
		seqs[i], types[i], lines[i] = p.seq, p.typ, p.line
	}
	ctx := context.Background()
	var n int64
	err := s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.q(fence+`INSERT INTO %[1]s.events (workspace, run, seq, type, line)
			SELECT $1, $3, e.seq, e.type, e.line FROM lease, unnest($4::bigint[], $5::text[], $6::text[]) AS e(seq, type, line)`),
			s.ws, l.h.Epoch, l.h.Run, seqs, types, lines)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return j.already(ctx, seqs, lines)
		}
		n = tag.RowsAffected()
		if err == nil && n == 0 {
			return l.lostError()
		}
		return err
	})
	if err != nil {
		return s.explain(err)
	}
	return nil
}

// already: a retried batch whose first attempt committed.
func (j *pgJournal) already(ctx context.Context, seqs []int64, lines []string) error {
	s := j.l.s
	rows, err := s.pool.Query(ctx, s.q(`SELECT seq, line FROM %[1]s.events WHERE workspace = $1 AND run = $2 AND seq = ANY($3) ORDER BY seq`), s.ws, j.l.h.Run, seqs)
	if err != nil {
		return err
	}
	got := map[int64]string{}
	var seq int64
	var line string
	if _, err := pgx.ForEachRow(rows, []any{&seq, &line}, func() error { got[seq] = line; return nil }); err != nil {
		return err
	}
	for i, sq := range seqs {
		if got[sq] != lines[i] {
			return fmt.Errorf("journal of run %s: event %d was written by someone else: the run has another writer", j.l.h.Run, sq)
		}
	}
	return nil
}

func (j *pgJournal) Close() error { return nil }

// ---------------------------------------------------------------------------
// Approvals, summary, samples, backups

func (s *Store) Approve(ctx context.Context, run, node, by string) (*runstore.Approval, error) {
	if err := runstore.CheckApproval(run, node); err != nil {
		return nil, err
	}
	var at time.Time
	var n int64
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q(`INSERT INTO %[1]s.approvals (workspace, run, node, by_whom, at)
			SELECT $1, $2, $3, $4, date_trunc('second', now()) FROM %[1]s.runs WHERE workspace = $1 AND run = $2
			ON CONFLICT (workspace, run, node) DO UPDATE SET by_whom = excluded.by_whom, at = excluded.at
			RETURNING at`), s.ws, run, node, by)
		if err != nil {
			return err
		}
		n = 0
		_, err = pgx.ForEachRow(rows, []any{&at}, func() error { n++; return nil })
		return err
	})
	if err != nil {
		return nil, s.explain(err)
	}
	if n == 0 {
		return nil, s.noRun(run)
	}
	return &runstore.Approval{Node: node, By: by, At: at.UTC()}, nil
}

func (s *Store) Approval(ctx context.Context, run, node string) (*runstore.Approval, error) {
	if err := runstore.CheckApproval(run, node); err != nil {
		return nil, err
	}
	var a *runstore.Approval
	err := s.do(ctx, func(ctx context.Context) error {
		a = nil
		var by string
		var at time.Time
		err := s.pool.QueryRow(ctx, s.q(`SELECT by_whom, at FROM %[1]s.approvals WHERE workspace = $1 AND run = $2 AND node = $3`), s.ws, run, node).Scan(&by, &at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil {
			a = &runstore.Approval{Node: node, By: by, At: at.UTC()}
		}
		return err
	})
	return a, s.explain(err)
}

func (s *Store) PutSummary(ctx context.Context, sm runstore.Summary) error {
	if !runstore.ValidRunID(sm.Run) {
		return fmt.Errorf("%q is not a run id", sm.Run)
	}
	sm.Updated = time.Now().UTC()
	b, err := json.Marshal(sm)
	if err != nil {
		return err
	}
	var n int64
	err = s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.q(`UPDATE %[1]s.runs SET summary = $3 WHERE workspace = $1 AND run = $2`), s.ws, sm.Run, b)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.explain(err)
	}
	if n == 0 {
		return s.noRun(sm.Run)
	}
	return nil
}

func (s *Store) Summary(ctx context.Context, run string) (*runstore.Summary, error) {
	if !runstore.ValidRunID(run) {
		return nil, fmt.Errorf("%q is not a run id", run)
	}
	var b []byte
	err := s.do(ctx, func(ctx context.Context) error {
		b = nil
		err := s.pool.QueryRow(ctx, s.q(`SELECT summary FROM %[1]s.runs WHERE workspace = $1 AND run = $2`), s.ws, run).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || b == nil {
		return nil, s.explain(err)
	}
	var sm runstore.Summary
	if err := json.Unmarshal(b, &sm); err != nil {
		return nil, err
	}
	return &sm, nil
}

// AppendSamples inserts every line in one statement. A retry after a lost
// commit answer could store a batch twice; readers see a repeated sample,
// never a lost one.
func (s *Store) AppendSamples(ctx context.Context, run string, lines []byte) error {
	if !runstore.ValidRunID(run) {
		return fmt.Errorf("%q is not a run id", run)
	}
	if len(lines) == 0 {
		return nil
	}
	if lines[len(lines)-1] != '\n' {
		return errors.New("samples: lines must end with a newline")
	}
	var ls []string
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	var n int64
	err := s.do(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.q(`INSERT INTO %[1]s.samples (workspace, run, line)
			SELECT $1, $2, l.line FROM unnest($3::text[]) WITH ORDINALITY AS l(line, i)
			WHERE EXISTS (SELECT 1 FROM %[1]s.runs WHERE workspace = $1 AND run = $2) ORDER BY l.i`), s.ws, run, ls)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.explain(err)
	}
	if n == 0 {
		return s.noRun(run)
	}
	return nil
}

// Samples streams in pages, so memory does not grow with the window.
func (s *Store) Samples(ctx context.Context, run string, fn func(line []byte) error) error {
	if !runstore.ValidRunID(run) {
		return fmt.Errorf("%q is not a run id", run)
	}
	after := int64(0)
	for {
		var page [][]byte
		var seqs []int64
		err := s.do(ctx, func(ctx context.Context) error {
			page, seqs = nil, nil
			rows, err := s.pool.Query(ctx, s.q(`SELECT seq, line FROM %[1]s.samples WHERE workspace = $1 AND run = $2 AND seq > $3 ORDER BY seq LIMIT 5000`), s.ws, run, after)
			if err != nil {
				return err
			}
			var seq int64
			var line []byte
			_, err = pgx.ForEachRow(rows, []any{&seq, &line}, func() error {
				page = append(page, append([]byte(nil), line...))
				seqs = append(seqs, seq)
				return nil
			})
			return err
		})
		if err != nil {
			return s.explain(err)
		}
		for _, l := range page {
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(page) < 5000 {
			return nil
		}
		after = seqs[len(seqs)-1]
	}
}

func checkBackupID(id string) (run, name string, err error) {
	run, name, ok := strings.Cut(id, "/")
	bad := func(s string) bool { return s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") }
	if !ok || bad(run) || bad(name) {
		return "", "", fmt.Errorf("backup id %q is not RUN/NAME", id)
	}
	return run, name, nil
}

func (s *Store) PutBackup(ctx context.Context, b runstore.Backup) error {
	run, name, err := checkBackupID(b.ID)
	if err != nil {
		return err
	}
	if !json.Valid(b.Manifest) {
		return fmt.Errorf("backup %s: the manifest is not JSON", b.ID)
	}
	var created *time.Time
	if !b.Created.IsZero() {
		created = &b.Created
	}
	err = s.do(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.q(`INSERT INTO %[1]s.backups (workspace, id, run, name, created, manifest) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (workspace, id) DO UPDATE SET run = excluded.run, name = excluded.name, created = excluded.created, manifest = excluded.manifest`),
			s.ws, b.ID, run, name, created, string(b.Manifest))
		return err
	})
	return s.explain(err)
}

func (s *Store) Backups(ctx context.Context) ([]runstore.Backup, error) {
	var out []runstore.Backup
	err := s.do(ctx, func(ctx context.Context) error {
		out = nil
		rows, err := s.pool.Query(ctx, s.q(`SELECT id, run, name, created, manifest::text FROM %[1]s.backups WHERE workspace = $1 ORDER BY id`), s.ws)
		if err != nil {
			return err
		}
		var b runstore.Backup
		var created *time.Time
		var m string
		_, err = pgx.ForEachRow(rows, []any{&b.ID, &b.Run, &b.Name, &created, &m}, func() error {
			nb := b
			if created != nil {
				nb.Created = created.UTC()
			}
			nb.Manifest = json.RawMessage(m)
			out = append(out, nb)
			return nil
		})
		return err
	})
	return out, s.explain(err)
}

func (s *Store) DeleteBackup(ctx context.Context, id string) error {
	if _, _, err := checkBackupID(id); err != nil {
		return err
	}
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.q(`DELETE FROM %[1]s.backups WHERE workspace = $1 AND id = $2`), s.ws, id)
		return err
	})
	return s.explain(err)
}
