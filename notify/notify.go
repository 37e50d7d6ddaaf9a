// Package notify sends a run's events to the receivers of the
// configuration's notify blocks (webhooks: a chat message or the -json
// event), from the process that runs the apply.
//
// Delivery never blocks the run: events are queued per receiver and sent by
// one goroutine each, with retries and a timeout per attempt. When the run
// ends, Close waits at most one timeout for what is still queued; every
// delivery that failed is reported through Options.Failed (the journal) and
// kept in runs/RUN/notifications.jsonl (status). No payload holds a
// sensitive value: every body is scrubbed with the run's secrets.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/journal"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// FileName keeps the failed deliveries of a run, inside its directory.
const FileName = "notifications.jsonl"

// Attempts per delivery, and the pause before each retry.
var (
	attempts = 3
	backoff  = []time.Duration{time.Second, 3 * time.Second}
)

// Options for New.
type Options struct {
	StateDir string
	Config   *lang.Config
	// Failed is called (from a sender goroutine) for each delivery that
	// failed after its retries; apply journals it.
	Failed func(Failure)
	Client *http.Client // nil: a client without redirects
}

// Failure is a delivery that did not succeed.
type Failure struct {
	TS       time.Time `json:"ts"`
	Run      string    `json:"run"`
	Notify   string    `json:"notify"`
	Event    string    `json:"event"`
	Node     string    `json:"node,omitempty"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
}

// Notifier fans a run's events out to its notify blocks.
type Notifier struct {
	opts    Options
	secrets *modules.Secrets
	sinks   []*sink
	client  *http.Client

	mu       sync.Mutex
	run      string
	failures []Failure
	closed   bool
	stop     chan struct{} // closed by Close: digests stop, retries give up at each receiver's deadline
	closedAt time.Time     // set by Close; a receiver's deadline is closedAt + its timeout
}

type sink struct {
	n     *lang.Notify
	on    map[string]bool
	queue chan message
	done  chan struct{}
}

type message struct {
	event string
	node  string
	body  []byte
}

// New starts the senders of cfg's notify blocks; nil when there is none.
func New(opts Options) *Notifier {
	cfg := opts.Config
	if cfg == nil || len(cfg.NotifyOrder) == 0 {
		return nil
	}
	nt := &Notifier{opts: opts, secrets: Secrets(cfg), client: opts.Client, stop: make(chan struct{})}
	if nt.client == nil {
		nt.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for _, name := range cfg.NotifyOrder {
		n := cfg.Notifies[name]
		if n == nil || n.URL == "" {
			continue
		}
		s := &sink{n: n, on: map[string]bool{}, queue: make(chan message, 1000), done: make(chan struct{})}
		for _, e := range n.On {
			s.on[e] = true
		}
		nt.sinks = append(nt.sinks, s)
		go nt.send(s)
		if n.Digest > 0 {
			go nt.digests(s)
		}
	}
	return nt
}

// Secrets is every sensitive string of the configuration: values of
// sensitive variables, and the notify blocks' addresses and headers when
// they came from one.
func Secrets(cfg *lang.Config) *modules.Secrets {
	s := modules.NewSecrets()
	for _, v := range cfg.Variables {
		s.Add(lang.SensitiveStrings(v.Value)...)
		if v.Sensitive {
			if raw, _ := v.Value.UnmarkDeep(); raw.IsKnown() && !raw.IsNull() && raw.Type().FriendlyName() == "string" {
				s.Add(raw.AsString())
			}
		}
	}
	for _, n := range cfg.Notifies {
		if n.Sensitive {
			s.Add(n.URL)
			for _, h := range n.Headers {
				s.Add(h)
			}
		}
	}
	return s
}

// Event takes one event of the run (an executor Observer); it never blocks.
func (nt *Notifier) Event(ev executor.Event) {
	if nt == nil {
		return
	}
	if ev.Type == journal.RunStarted || ev.Type == journal.RunResumed {
		nt.mu.Lock()
		nt.run = ev.Run
		nt.mu.Unlock()
	}
	names := Names(ev)
	if len(names) == 0 {
		return
	}
	for _, s := range nt.sinks {
		for _, name := range names {
			if !s.on[name] {
				continue
			}
			body, err := nt.body(s.n, name, ev)
			if err != nil {
				nt.fail(s, message{event: name, node: ev.Node}, 0, err)
				continue
			}
			if !nt.enqueue(s, message{event: name, node: ev.Node, body: body}) {
				nt.fail(s, message{event: name, node: ev.Node}, 0, errors.New("not sent: the queue of this receiver is full, or the run has ended"))
			}
			break // one message per event and receiver: the first name it asked for
		}
	}
}

// enqueue queues m without waiting; false when the queue is full or closed.
func (nt *Notifier) enqueue(s *sink, m message) bool {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.closed {
		return false
	}
	select {
	case s.queue <- m:
		return true
	default:
		return false
	}
}

// Names are the notify events an executor event is, most specific first.
func Names(ev executor.Event) []string {
	switch ev.Type {
	case journal.RunStarted, journal.RunResumed:
		return []string{"run_started"}
	case executor.EvWaiting:
		return []string{"waiting"}
	case journal.Approved:
		return []string{"approved"}
	case journal.Rejected:
		return []string{"rejected"}
	case journal.NodeFailed:
		if ev.Kind == "observe" || strings.HasPrefix(ev.Node, "observe.") {
			return []string{"observe_breach", "node_failed"}
		}
		return []string{"node_failed"}
	case executor.EvRollbackStarted:
		return []string{"rollback_started"}
	case journal.UndoFailed:
		return []string{"undo_failed"}
	case executor.EvEscalation:
		return []string{"escalation"}
	case journal.RunFinished:
		if ev.Outcome == executor.OutcomeRollbackIncomplete {
			return []string{"rollback_incomplete", "run_finished"}
		}
		return []string{"run_finished"}
	}
	return nil
}

// body is the payload of one event for one receiver, scrubbed of secrets.
func (nt *Notifier) body(n *lang.Notify, name string, ev executor.Event) ([]byte, error) {
	var b []byte
	var err error
	if n.Format == "slack" {
		b, err = json.Marshal(map[string]string{"text": nt.secrets.Redact(Text(name, ev))})
	} else {
		ev.Summary = nil // the run's whole summary is for the terminal, not a webhook
		b, err = json.Marshal(struct {
			executor.Event
			Notify      string `json:"notify"`
			NotifyEvent string `json:"notify_event"`
		}{ev, n.Name, name})
		if err == nil {
			b = []byte(nt.secrets.Redact(string(b)))
		}
	}
	return b, err
}

// Text is the one-paragraph chat message of an event.
func Text(name string, ev executor.Event) string {
	run := ev.Run
	var s string
	switch name {
	case "run_started":
		s = "run started"
		if ev.Message == "rollback" {
			s = "rollback of the run started (`upgrader rollback`)"
		} else if ev.Type == journal.RunResumed {
			s = "run resumed"
		}
	case "waiting":
		s = fmt.Sprintf("%s is waiting for a decision: %s", ev.Node, ev.Message)
	case "approved":
		s = fmt.Sprintf("%s approved%s", ev.Node, by(ev.Message))
	case "rejected":
		s = fmt.Sprintf("%s rejected%s", ev.Node, by(ev.Message))
	case "observe_breach":
		s = fmt.Sprintf(":rotating_light: observation window %s failed: %s", ev.Node, ev.Error)
	case "node_failed":
		s = fmt.Sprintf(":x: %s failed: %s", ev.Node, ev.Error)
	case "rollback_started":
		s = ":leftwards_arrow_with_hook: " + ev.Message
	case "undo_failed":
		s = fmt.Sprintf(":bangbang: undo of %s failed: %s", ev.Node, ev.Error)
	case "escalation":
		s = "escalation: " + ev.Message
	case "rollback_incomplete":
		s = ":bangbang: the run ended as rollback_incomplete: a human must undo what is left (`upgrader status`)"
		if ev.Error != "" {
			s += ": " + ev.Error
		}
	case "run_finished":
		s = "run finished: " + ev.Outcome
		if ev.Error != "" {
			s += " (" + ev.Error + ")"
		}
	case "digest":
		s = "daily digest of the open observation windows:\n" + ev.Message
	default:
		s = name + ": " + ev.Message
	}
	return fmt.Sprintf("[upgrader] run %s: %s", run, s)
}

func by(msg string) string {
	if msg == "" {
		return ""
	}
	return " " + msg
}

// send delivers s's queue, one message at a time, in order.
func (nt *Notifier) send(s *sink) {
	defer close(s.done)
	for m := range s.queue {
		var err error
		n := 0
		for n < attempts {
			n++
			var retry bool
			retry, err = nt.post(s, m.body)
			if err == nil || !retry || n == attempts {
				break
			}
			if !nt.pause(s, backoff[min(n-1, len(backoff)-1)]) {
				break // the run ended and the receiver had its one timeout
			}
		}
		if err != nil {
			nt.fail(s, m, n, err)
		}
	}
}

// deadline is when s must give up: Close's time plus its timeout (zero while the run goes on).
func (nt *Notifier) deadline(s *sink) time.Time {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.closedAt.IsZero() {
		return time.Time{}
	}
	return nt.closedAt.Add(s.n.Timeout)
}

// pause waits d before a retry; false when the receiver's deadline comes first.
func (nt *Notifier) pause(s *sink, d time.Duration) bool {
	if dl := nt.deadline(s); !dl.IsZero() && time.Now().Add(d).After(dl) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-nt.stop:
		// Close was called: one more try only if the deadline leaves room.
		return time.Now().Add(d).Before(nt.deadline(s))
	}
}

// post sends one body. retry says whether trying again may help.
func (nt *Notifier) post(s *sink, body []byte) (retry bool, err error) {
	n := s.n
	ctx, cancel := context.WithTimeout(context.Background(), n.Timeout)
	defer cancel()
	if dl := nt.deadline(s); !dl.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl)
		defer c2()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the webhook's url is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "upgrader")
	for k, v := range n.Headers {
		req.Header.Set(k, v)
	}
	resp, err := nt.client.Do(req)
	if err != nil {
		// *url.Error names the address, which may hold a token: keep only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return true, fmt.Errorf("no answer within %s", n.Timeout)
		}
		return true, errors.New(nt.secrets.Redact(err.Error()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout,
		fmt.Errorf("the receiver answered %s", resp.Status)
}

func (nt *Notifier) fail(s *sink, m message, n int, err error) {
	nt.mu.Lock()
	f := Failure{TS: time.Now().UTC(), Run: nt.run, Notify: s.n.Name, Event: m.event, Node: m.node, Attempts: n, Error: nt.secrets.Redact(err.Error())}
	nt.failures = append(nt.failures, f)
	nt.mu.Unlock()
	if f.Run != "" && nt.opts.StateDir != "" {
		_ = appendLine(filepath.Join(journal.RunDir(nt.opts.StateDir, f.Run), FileName), f)
	}
	if nt.opts.Failed != nil {
		nt.opts.Failed(f)
	}
}

func appendLine(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return err
}

// digests sends, every s.n.Digest, the latest metrics of the run's open
// observation windows (nothing when none is open).
func (nt *Notifier) digests(s *sink) {
	t := time.NewTicker(s.n.Digest)
	defer t.Stop()
	for {
		select {
		case <-nt.stop:
			return
		case now := <-t.C:
			nt.mu.Lock()
			run := nt.run
			nt.mu.Unlock()
			if run == "" || nt.opts.StateDir == "" {
				continue
			}
			wins, err := observe.Summarize(observe.MetricsFile(nt.opts.StateDir, run))
			if err != nil {
				continue
			}
			var b strings.Builder
			for _, w := range wins {
				if w.Open() {
					b.WriteString(w.Text(now))
				}
			}
			if b.Len() == 0 {
				continue
			}
			ev := executor.Event{TS: now.UTC(), Type: "digest", Run: run, Message: strings.TrimRight(b.String(), "\n")}
			body, err := nt.body(s.n, "digest", ev)
			if err != nil {
				continue
			}
			nt.enqueue(s, message{event: "digest", body: body})
		}
	}
}

// Close lets the queued notifications go out, each receiver for at most its
// timeout (once, however much is queued); what is left is a failure.
func (nt *Notifier) Close() {
	if nt == nil {
		return
	}
	nt.mu.Lock()
	if nt.closed {
		nt.mu.Unlock()
		return
	}
	nt.closed = true
	var wait time.Duration
	for _, s := range nt.sinks {
		wait = max(wait, s.n.Timeout)
	}
	nt.closedAt = time.Now()
	nt.mu.Unlock()
	close(nt.stop)
	for _, s := range nt.sinks {
		close(s.queue)
	}
	timer := time.NewTimer(wait + 100*time.Millisecond)
	defer timer.Stop()
	for _, s := range nt.sinks {
		select {
		case <-s.done:
		case <-timer.C:
			return // a sender still stuck in a dial: the process exits anyway
		}
	}
}

// Failures returns the failed deliveries so far.
func (nt *Notifier) Failures() []Failure {
	if nt == nil {
		return nil
	}
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return append([]Failure(nil), nt.failures...)
}

// ReadFailures reads runs/RUN/notifications.jsonl (status); none when absent.
func ReadFailures(stateDir, run string) []Failure {
	b, err := os.ReadFile(filepath.Join(journal.RunDir(stateDir, run), FileName))
	if err != nil {
		return nil
	}
	var out []Failure
	for _, line := range bytes.Split(b, []byte("\n")) {
		var f Failure
		if json.Unmarshal(line, &f) == nil && f.Notify != "" {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS.Before(out[j].TS) })
	return out
}

// NotifyFailed is the journal event of a delivery that failed.
const NotifyFailed = "notify_failed"

// JournalFailures appends a notify_failed event per failure to the run's
// journal in store once the run has ended (its failures at the end are
// known only then), holding the run's lock while it does.
func JournalFailures(ctx context.Context, store runstore.Store, run string, fs []Failure) error {
	if len(fs) == 0 {
		return nil
	}
	lock, err := store.TakeOver(ctx, run)
	if err != nil {
		return err
	}
	defer lock.Release()
	w, _, err := lock.Open(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, f := range fs {
		d, _ := json.Marshal(map[string]any{"notify": f.Notify, "event": f.Event, "attempts": f.Attempts, "error": f.Error,
			"message": fmt.Sprintf("notify %q: %s not delivered", f.Notify, f.Event)})
		if err := w.Append(journal.Event{TS: f.TS, Type: NotifyFailed, Node: f.Node, Data: d}); err != nil {
			return err
		}
	}
	return nil
}
