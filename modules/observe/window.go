package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/internal/metricsrc"
)

// Checkpoint keys, under the node's address ("observe.soak/window").
const (
	keyWindow = "/window" // windowMark, once at the start
	keyState  = "/state"  // state, after every interval
)

// windowMark is the part of a window that never changes once started.
type windowMark struct {
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
	// Ended is the outcome once the window is over: another Apply of the
	// node (a retry after a failure) then opens a new window.
	Ended string `json:"ended,omitempty"`
}

type window struct {
	s       *settings
	req     *modules.Request
	env     modules.Env
	node    string
	path    string // metrics.jsonl
	out     *metricsWriter
	st      *state
	mark    windowMark
	resumed bool
	timeout time.Duration        // per host round trip
	cpu     map[string][2]uint64 // host -> busy, total jiffies at the last sample
	now     func() time.Time
	lastLog time.Time                    // last heartbeat in the run's log
	warned  map[string]bool              // cursor keys already reported unreadable
	clients map[string]*metricsrc.Client // by metric_source name
	baseMu  sync.Mutex                   // st.Baselines, written by the metric queries
}

func newWindow(req *modules.Request, s *settings) (*window, error) {
	w := &window{
		s: s, req: req, env: req.Env, node: req.Node,
		path:   MetricsFile(req.Env.StateDir(), req.Env.RunID()),
		cpu:    map[string][2]uint64{},
		warned: map[string]bool{},
		now:    time.Now,
	}
	// Long enough for a slow host, short enough that a dead one does not
	// stall the window for long.
	w.timeout = min(max(2*s.Interval, 5*time.Second), 30*time.Second)

	found, err := w.env.Recall(w.node+keyWindow, &w.mark)
	if err != nil {
		return nil, fmt.Errorf("reading the window's checkpoint: %w", err)
	}
	if found && w.mark.Ended == "" {
		w.resumed = true
		// Decoded over empty maps: what the checkpoint omits stays usable.
		w.st = newState()
		if _, err := w.env.Recall(w.node+keyState, w.st); err != nil {
			return nil, fmt.Errorf("reading the window's checkpoint: %w", err)
		}
		// A breach timer says how long a value has stayed above its bound;
		// across a gap longer than two intervals nobody knows, so it restarts.
		if gap := w.now().Sub(w.st.TS); len(w.st.BreachStart) > 0 && gap > 2*s.Interval {
			w.st.BreachStart = map[string]time.Time{}
			w.logf("not sampled for %s: breach timers restart", gap.Round(time.Second))
		}
	} else {
		start := w.now().UTC()
		w.mark = windowMark{Started: start, Deadline: start.Add(s.Duration)}
		// The deadline is durable before the first sample: a resume keeps it.
		if err := w.env.Checkpoint(w.node+keyWindow, w.mark); err != nil {
			return nil, fmt.Errorf("recording the window's deadline: %w", err)
		}
		w.st = newState()
	}
	if w.clients, err = metricClients(w.env, s); err != nil {
		return nil, err
	}
	w.out = openMetrics(w.env)
	return w, nil
}

func (w *window) logf(format string, args ...any) {
	if w.req.Log != nil {
		// The executor prefixes each line with the node's address.
		fmt.Fprintf(w.req.Log, format+"\n", args...)
	}
}

// breachError is a window that failed: the executor rolls back.
type breachError struct {
	reasons []string
	judged  string // non-empty: judged from samples after the fact
}

func (e *breachError) Error() string {
	head := "observation window failed"
	if e.judged != "" {
		head += " (" + e.judged + ")"
	}
	if len(e.reasons) == 1 && !strings.Contains(e.reasons[0], "\n") {
		return head + ": " + e.reasons[0]
	}
	return head + ":\n  " + strings.ReplaceAll(strings.Join(e.reasons, "\n"), "\n", "\n  ")
}

func (w *window) run(ctx context.Context) (*modules.Outcome, error) {
	dl := w.mark.Deadline
	if w.resumed && !w.now().Before(dl) {
		return w.judgeAfterDeadline()
	}
	d := dl
	if err := w.out.write(&Record{Type: RecordWindow, Node: w.node, TS: w.now().UTC(), Deadline: &d,
		Interval: w.s.Interval.String(), Hosts: w.s.Hosts, Resumed: w.resumed, Bounds: w.s.bounds(), BreachFor: w.s.BreachFor.String(),
		MetricNames: w.s.metricNames(), MetricBounds: w.s.metricBounds()}); err != nil {
		return nil, err
	}
	verb := "observing"
	if w.resumed {
		verb = "resuming the window:"
	}
	w.logf("%s %s until %s (%s left), every %s", verb, w.what(), dl.Format(time.RFC3339), dl.Sub(w.now()).Round(time.Second), w.s.Interval)
	if w.env.Approved(w.node) {
		return w.approved()
	}
	next := w.now()
	for {
		if err := w.round(ctx); err != nil {
			var be *breachError
			if errors.As(err, &be) {
				w.end("failed", strings.Join(be.reasons, "\n"))
			}
			return nil, err
		}
		now := w.now()
		if !now.Before(dl) {
			return w.passed()
		}
		next = next.Add(w.s.Interval)
		if next.Before(now) {
			next = now // a slow round: sample again at once, without a burst
		}
		if next.After(dl) {
			next = dl // one last look at the deadline
		}
		approved, err := w.wait(ctx, next)
		if err != nil {
			return nil, err
		}
		if approved {
			return w.approved()
		}
	}
}

func (w *window) what() string {
	var p []string
	if len(w.s.Hosts) > 0 {
		p = append(p, strings.Join(w.s.Hosts, ", "))
	}
	if len(w.s.Metrics) > 0 {
		p = append(p, "metrics "+strings.Join(w.s.metricNames(), ", "))
	}
	if len(w.s.Checks) > 0 && len(w.s.Hosts) == 0 {
		p = append(p, "checks "+strings.Join(w.s.Checks, ", "))
	}
	return strings.Join(p, " and ")
}

// wait sleeps until t, polling for an approval (upgrader approve).
func (w *window) wait(ctx context.Context, t time.Time) (bool, error) {
	poll := min(w.s.Interval, time.Second)
	for {
		if w.env.Approved(w.node) {
			return true, nil
		}
		d := t.Sub(w.now())
		if d <= 0 {
			return false, nil
		}
		timer := time.NewTimer(min(d, poll))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, ctx.Err()
		case <-timer.C:
		}
	}
}

func (w *window) outcome(passed bool, msg string) *modules.Outcome {
	return &modules.Outcome{Message: msg, Outputs: map[string]cty.Value{
		"samples": cty.NumberIntVal(int64(w.st.Samples)),
		"passed":  cty.BoolVal(passed),
	}}
}

func (w *window) end(outcome, reason string) {
	if err := w.out.write(&Record{Type: RecordEnd, Node: w.node, TS: w.now().UTC(), Outcome: outcome, Reason: reason}); err != nil {
		w.logf("writing %s: %v", w.path, err)
	}
	w.mark.Ended = outcome
	if err := w.env.Checkpoint(w.node+keyWindow, w.mark); err != nil {
		w.logf("recording the end of the window: %v", err)
	}
}

func (w *window) passed() (*modules.Outcome, error) {
	msg := fmt.Sprintf("passed: %d samples over %s, no bound breached", w.st.Samples, w.mark.Deadline.Sub(w.mark.Started).Round(time.Second))
	w.end("passed", "")
	w.logf("%s", msg)
	return w.outcome(true, msg), nil
}

func (w *window) approved() (*modules.Outcome, error) {
	left := w.mark.Deadline.Sub(w.now()).Round(time.Second)
	msg := fmt.Sprintf("passed: approved by an operator with %s left (%d samples)", left, w.st.Samples)
	w.end("approved", fmt.Sprintf("approved with %s left", left))
	w.logf("%s", msg)
	return w.outcome(true, msg), nil
}

// judgeAfterDeadline decides a window whose deadline passed while upgrader
// was down, from the samples that reached metrics.jsonl.
func (w *window) judgeAfterDeadline() (*modules.Outcome, error) {
	st := newState()
	var (
		n     int
		last  time.Time
		fails []string
	)
	err := ReadRecordsFrom(w.env.ReadSamples, func(r *Record) error {
		if r.Node != w.node || (r.Type != RecordSample && r.Type != RecordMetric) || r.TS.Before(w.mark.Started) {
			return nil // another node, or an earlier window of this node
		}
		n++
		last = r.TS
		if f := w.s.evaluate(st, r); len(f) > 0 && fails == nil {
			fails = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading samples: %w", err)
	}
	w.st.Samples = max(w.st.Samples, n)
	gap := "no sample was taken: nothing was observed"
	if n > 0 {
		gap = fmt.Sprintf("they cover %s of the %s window (the last at %s, %s before the deadline)",
			last.Sub(w.mark.Started).Round(time.Second), w.mark.Deadline.Sub(w.mark.Started).Round(time.Second),
			last.UTC().Format(time.RFC3339), w.mark.Deadline.Sub(last).Round(time.Second))
	}
	how := fmt.Sprintf("the deadline %s passed while upgrader was down; judged from the %d samples in %s; %s",
		w.mark.Deadline.UTC().Format(time.RFC3339), n, w.path, gap)
	w.logf("%s", how)
	if fails != nil {
		w.end("judged_failed", how+"\n"+strings.Join(fails, "\n"))
		return nil, &breachError{reasons: fails, judged: how}
	}
	w.end("judged_passed", how)
	return w.outcome(true, "passed (judged): "+how), nil
}

// round takes one sample of every host and runs every check, in parallel,
// then records and judges them.
func (w *window) round(ctx context.Context) error {
	type hostRes struct {
		pr  *probeReq
		raw *rawSample
		err error
	}
	res := make([]hostRes, len(w.s.Hosts))
	checkErr := make([]error, len(w.s.Checks))
	var wg sync.WaitGroup
	for i, h := range w.s.Hosts {
		res[i].pr = w.probeReq(h)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd, err := w.env.Reader(h)
			if err != nil {
				res[i].err = err
				return
			}
			res[i].raw, res[i].err = runProbe(ctx, rd, res[i].pr, w.timeout)
		}()
	}
	for i, c := range w.s.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkErr[i] = w.env.Check(ctx, c)
		}()
	}
	metricRes := make([]metricResult, len(w.s.Metrics))
	w.queryMetrics(ctx, &wg, metricRes)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err // interrupted, not failed: resume continues the window
	}

	ts := w.now().UTC()
	var checkFails map[string]int
	var checkErrs map[string]string
	if len(w.s.Checks) > 0 {
		checkFails = map[string]int{}
		for i, c := range w.s.Checks {
			if checkErr[i] != nil {
				w.st.CheckFails[c]++
				if checkErrs == nil {
					checkErrs = map[string]string{}
				}
				checkErrs[c] = truncate(oneLine(checkErr[i].Error()), 300)
			} else {
				w.st.CheckFails[c] = 0
			}
			checkFails[c] = w.st.CheckFails[c]
		}
	}
	hosts := w.s.Hosts
	if len(hosts) == 0 && (len(w.s.Checks) > 0 || len(w.s.Metrics) == 0) {
		hosts = []string{""}
	}
	recs := make([]*Record, len(hosts))
	var fails []string
	for i, h := range hosts {
		rec := &Record{Type: RecordSample, Node: w.node, TS: ts, Host: h, CheckFailures: checkFails, CheckErrors: checkErrs}
		if h != "" {
			w.fill(rec, h, res[i].raw, res[i].err)
		}
		f := w.s.evaluate(w.st, rec)
		rec.Deciding = len(f) > 0
		fails = append(fails, f...)
		recs[i] = rec
	}
	for i := range w.s.Metrics {
		m := &w.s.Metrics[i]
		mrecs := w.metricRecords(ts, m, metricRes[i])
		seen := map[string]bool{}
		for _, r := range mrecs {
			f := w.s.evaluate(w.st, r)
			r.Deciding = len(f) > 0
			fails = append(fails, f...)
			seen[r.Series] = true
		}
		// A series gone from the result is no longer above anything.
		prefix := metricKey(m.Name, "", "")
		prefix = prefix[:len(prefix)-1]
		for k := range w.st.BreachStart {
			if rest, ok := strings.CutPrefix(k, prefix); ok {
				if series := rest[:strings.LastIndexByte(rest, '|')]; !seen[series] {
					delete(w.st.BreachStart, k)
				}
			}
		}
		recs = append(recs, mrecs...)
		w.st.Metrics[m.Name] = metricOutcome(mrecs)
	}
	w.st.Samples += len(recs)
	w.st.TS = ts
	// Checkpoint before the samples reach the file: a crash in between loses
	// a sample line, never counts log lines twice.
	if err := w.env.Checkpoint(w.node+keyState, w.st); err != nil {
		return fmt.Errorf("checkpointing the window: %w", err)
	}
	if err := w.out.write(recs...); err != nil {
		return err
	}
	w.logRound(recs)
	if len(fails) > 0 {
		return &breachError{reasons: fails}
	}
	return nil
}

// probeReq builds host's sampling command from the log cursors.
func (w *window) probeReq(host string) *probeReq {
	pr := &probeReq{Nonce: newNonce(), DiskPaths: w.s.DiskPaths}
	for _, l := range w.s.Logs {
		if !l.onHost(host) {
			continue
		}
		cur, ok := w.st.Cursors[cursorKey(host, l.Index)]
		pr.Logs = append(pr.Logs, logReq{Path: l.Path, Start: !ok, Cur: cur, Cap: readCap, Re: l.Re})
	}
	return pr
}

func cursorKey(host string, i int) string { return fmt.Sprintf("%s|%d", host, i) }

// fill turns one host's raw sample into its record and advances the state.
func (w *window) fill(rec *Record, h string, raw *rawSample, err error) {
	if err != nil {
		w.st.Unreachable[h]++
		rec.Unreachable = w.st.Unreachable[h]
		rec.Error = truncate(oneLine(err.Error()), 300)
		return
	}
	delete(w.st.Unreachable, h)
	if raw.CPUOK {
		if prev, ok := w.cpu[h]; ok {
			if pct, ok := cpuPercent(prev[0], prev[1], raw.CPUBusy, raw.CPUTotal); ok {
				rec.CPU = &pct
			}
		}
		w.cpu[h] = [2]uint64{raw.CPUBusy, raw.CPUTotal}
	}
	if raw.MemOK {
		m := raw.MemPercent
		rec.Mem = &m
	}
	if raw.LoadOK {
		l := raw.Load1
		rec.Load = &l
	}
	for _, d := range raw.Disk {
		if d.OK {
			if rec.Disk == nil {
				rec.Disk = map[string]float64{}
			}
			rec.Disk[d.Mount] = d.Percent
		}
	}
	j := 0
	for i, l := range w.s.Logs {
		if !l.onHost(h) {
			continue
		}
		lr := raw.Logs[j]
		j++
		key := cursorKey(h, l.Index)
		w.st.Cursors[key] = lr.Next
		w.st.Matches[key] += lr.Matches
		name := w.s.logName(i)
		if rec.LogMatches == nil {
			rec.LogMatches = map[string]int{}
		}
		rec.LogMatches[name] = w.st.Matches[key]
		if len(lr.Lines) > 0 {
			if rec.LogLines == nil {
				rec.LogLines = map[string][]string{}
			}
			rec.LogLines[name] = lr.Lines
		}
		if lr.Unreadable {
			rec.Error = strings.TrimPrefix(rec.Error+"; ", "; ") + fmt.Sprintf("log %s is not readable", l.Path)
			if !w.warned[key] {
				w.warned[key] = true
				w.logf("host %q: log %s is not readable by %s: its lines are not seen", h, l.Path, userOf(rd(w.env, h)))
			}
		}
		if lr.Behind > 0 {
			w.logf("host %q: %s grows faster than it is read (%d bytes behind); catching up", h, l.Path, lr.Behind)
		}
	}
}

// logRound writes a round's samples to the run's log: every sample that is
// above a bound, unreachable or saw a matching line or failed check, and
// otherwise a heartbeat at most once a minute, so that a 72-hour window
// does not flood the terminal.
func (w *window) logRound(recs []*Record) {
	if w.req.Log == nil {
		return
	}
	notable := false
	for _, r := range recs {
		if len(r.Over) > 0 || r.Unreachable > 0 || len(r.LogLines) > 0 || len(r.CheckErrors) > 0 {
			notable = true
		}
	}
	now := w.now()
	if !notable && !w.lastLog.IsZero() && now.Sub(w.lastLog) < time.Minute {
		return
	}
	w.lastLog = now
	w.logf("%d samples, %s left", w.st.Samples, w.mark.Deadline.Sub(now).Round(time.Second))
	for _, r := range recs {
		name := r.Host
		if r.Type == RecordMetric {
			name = "metric " + r.Metric + seriesText(r.Series)
		} else if name == "" {
			name = "checks"
		}
		over := ""
		if len(r.Over) > 0 {
			over = "  BREACH: " + strings.Join(r.Over, ", ")
		}
		w.logf("  %s %s%s", name, r.Metrics(), over)
	}
}

// runProbe runs one sampling command and parses its output as it streams.
func runProbe(ctx context.Context, rd modules.Reader, pr *probeReq, timeout time.Duration) (*rawSample, error) {
	r, wr := io.Pipe()
	counted := &countWriter{w: wr}
	var (
		raw  *rawSample
		perr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		raw, perr = parseProbe(r, pr)
		_, _ = io.Copy(io.Discard, r) // never block the transport
	}()
	type probeRes struct {
		res modules.Result
		err error
	}
	call := make(chan probeRes, 1)
	go func() {
		res, err := rd.Probe(ctx, modules.Command{Cmd: pr.script(), Timeout: timeout, Stdout: counted})
		call <- probeRes{res, err}
	}()
	// A transport that never returns must not stall the window past its
	// deadline: the call is abandoned (and its output discarded) after a grace.
	grace := time.NewTimer(timeout + 10*time.Second)
	defer grace.Stop()
	var pres probeRes
	select {
	case pres = <-call:
	case <-grace.C:
		r.CloseWithError(errors.New("abandoned"))
		return nil, fmt.Errorf("no answer within %s", timeout+10*time.Second)
	}
	res, err := pres.res, pres.err
	wr.Close()
	<-done
	if err != nil {
		return nil, err
	}
	if perr != nil && counted.n == 0 && len(res.Stdout) > 0 && !res.Truncated {
		// A transport that only fills Result.Stdout: parse that instead.
		raw, perr = parseProbe(bytes.NewReader(res.Stdout), pr)
	}
	if perr != nil {
		msg := perr.Error()
		if e := strings.TrimSpace(string(res.Stderr)); e != "" {
			msg += " (stderr: " + truncate(oneLine(e), 200) + ")"
		}
		return nil, fmt.Errorf("sampling failed with exit code %d: %s", res.ExitCode, msg)
	}
	return raw, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// rd is the host's Reader for messages (nil when there is none).
func rd(env modules.Env, host string) modules.Reader {
	r, err := env.Reader(host)
	if err != nil {
		return nil
	}
	return r
}
