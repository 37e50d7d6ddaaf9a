package observe

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

const appLog = "/var/log/app/app.log"

// bedWindow is an observe node over real test hosts.
type bedWindow struct {
	bed *testbed.Testbed
	env *modtest.Env
	cfg *modules.Config
	out strings.Builder
}

func newBedWindow(t *testing.T, bed *testbed.Testbed, body string) *bedWindow {
	t.Helper()
	w := &bedWindow{bed: bed}
	w.env = &modtest.Env{ID: "run1", Dir: filepath.Join(t.TempDir(), "state"),
		Targets: map[string]modules.Target{}, Checks: map[string]func(context.Context) error{}}
	var names []string
	for _, h := range bed.Hosts() {
		tg, err := bed.Target(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.env.Targets[h.Name] = tg
		names = append(names, h.Name)
		// A fresh log the deploy user can read, with a line from before the window.
		hexec(t, h, "mkdir -p /var/log/app && echo 'ERROR from before the window' > "+appLog+" && chmod 644 "+appLog)
	}
	w.cfg, _ = mustSettings(t, "observe \"soak\" {\n"+body+"\n}\n", names, []string{"regression"})
	return w
}

func (w *bedWindow) apply(ctx context.Context) (*modules.Outcome, error) {
	return New().Apply(ctx, &modules.Request{Config: w.cfg, Node: "observe.soak", Index: -1, Env: w.env, Log: &syncWriter{b: &w.out}})
}

func (w *bedWindow) samples(t *testing.T) []*Record {
	var out []*Record
	err := ReadRecords(MetricsFile(w.env.Dir, w.env.ID), func(r *Record) error {
		if r.Type == RecordSample {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hexec(t *testing.T, h *testbed.Host, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A CPU burner on the host (one loop per core) breaches max_cpu_percent and
// fails the window. /proc/stat is machine-wide in a network namespace, so
// the burners load the machine the hosts share.
func TestObserve_cpuBurnerFails(t *testing.T) {
	bed := testbed.New(t, "web1")
	w := newBedWindow(t, bed, `
  duration        = "20s"
  interval        = "300ms"
  hosts           = [host.web1]
  max_cpu_percent = 90
  breach_for      = "600ms"`)
	h := bed.Host("web1")
	pids := strings.Fields(hexec(t, h, "for i in 1 2; do nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!; done"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := h.Exec(ctx, "kill "+strings.Join(pids, " ")); err != nil {
			t.Errorf("stopping the burners: %v", err)
		}
	})
	start := time.Now()
	_, err := w.apply(context.Background())
	if err == nil {
		t.Fatalf("window passed with two CPU burners running\n%s", w.out.String())
	}
	if !regexp.MustCompile(`host "web1": cpu [0-9.]+% is above max_cpu_percent 90% since .* \(for [0-9.]+m?s, breach_for 600ms\)`).MatchString(err.Error()) {
		t.Fatalf("error = %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("breach took %s to fail the window", el)
	}
	t.Logf("%v (after %s)", err, time.Since(start).Round(time.Millisecond))
}

// An ERROR line appended to the log fails the window; the error shows it.
func TestObserve_errorLineFails(t *testing.T) {
	bed := testbed.New(t, "web1", "web2")
	w := newBedWindow(t, bed, `
  duration = "20s"
  interval = "300ms"
  hosts    = [host.web1, host.web2]
  log {
    path    = "`+appLog+`"
    pattern = "ERROR"
  }`)
	time.AfterFunc(time.Second, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := bed.Host("web2").Exec(ctx, "echo 'INFO ok' >> "+appLog+"; echo '2026-11-28 10:00:01 ERROR upstream refused: 502 on /api/orders' >> "+appLog); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	_, err := w.apply(context.Background())
	if err == nil {
		t.Fatal("window passed")
	}
	for _, want := range []string{
		`log /var/log/app/app.log on host "web2": 1 line(s) match "ERROR" (max_matches 0):`,
		"2026-11-28 10:00:01 ERROR upstream refused: 502 on /api/orders",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "before the window") || strings.Contains(err.Error(), "web1") {
		t.Errorf("error blames a line from before the window or the quiet host:\n%v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
}

// Lines keep coming while the log is rotated (mv app.log app.log.1, new
// app.log) in the middle of the window: every line is counted exactly once.
func TestObserve_rotationNoLossNoDouble(t *testing.T) {
	bed := testbed.New(t, "web1")
	w := newBedWindow(t, bed, `
  duration = "8s"
  interval = "300ms"
  hosts    = [host.web1]
  log {
    path        = "`+appLog+`"
    pattern     = "ERROR"
    max_matches = 100000
  }`)
	h := bed.Host("web1")
	// One line every 150ms (about 2 per interval, while a sample keeps up
	// to 5 in log_lines: each line can be identified), rotating half-way.
	writer := "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo \"ERROR line $i\" >> " + appLog + "; " +
		"if [ $i = 15 ]; then mv " + appLog + " " + appLog + ".1; : > " + appLog + "; chmod 644 " + appLog + "; fi; sleep 0.15; done"
	done := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := h.Exec(ctx, writer)
		done <- err
	})
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("window: %v\n%s", err, w.out.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	last := 0
	// A sample keeps at most 5 matching lines: when one came late (a loaded
	// machine) and more lines matched in its interval, those lines cannot all
	// be named, and only the count (and no line named twice) is judged.
	named := true
	for _, r := range w.samples(t) {
		lines := r.LogLines[appLog]
		if r.LogMatches[appLog]-last > len(lines) {
			named = false
		}
		for _, l := range lines {
			n, _ := strconv.Atoi(strings.TrimPrefix(l, "ERROR line "))
			seen[n]++
		}
		last = r.LogMatches[appLog]
	}
	var missing, twice []int
	for i := 1; i <= 30; i++ {
		switch seen[i] {
		case 0:
			if named {
				missing = append(missing, i)
			}
		case 1:
		default:
			twice = append(twice, i)
		}
	}
	if !named {
		t.Logf("a sample matched more lines than it keeps: %d of 30 lines named, the count judged", len(seen))
	}
	if len(missing) > 0 || len(twice) > 0 || last != 30 || len(seen) > 30 || (named && len(seen) != 30) {
		t.Errorf("lines missing %v, counted twice %v, total %d (want 30)\n%s", missing, twice, last, w.out.String())
	}
	if !out.Outputs["passed"].True() {
		t.Error("not passed")
	}
}

// upgrader killed mid-window (the context ends) and applied again with the
// same checkpoints: the window ends at its original deadline.
func TestObserve_resumeOriginalDeadline(t *testing.T) {
	bed := testbed.New(t, "web1")
	w := newBedWindow(t, bed, `
  duration = "3s"
  interval = "300ms"
  hosts    = [host.web1]
  log {
    path        = "`+appLog+`"
    pattern     = "ERROR"
    max_matches = 1
  }`)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := w.apply(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted window: %v", err)
	}
	hexec(t, bed.Host("web1"), "echo 'ERROR while upgrader was down' >> "+appLog)
	time.Sleep(500 * time.Millisecond)
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("resumed: %v\n%s", err, w.out.String())
	}
	var mark windowMark
	if ok, _ := w.env.Recall("observe.soak"+keyWindow, &mark); !ok {
		t.Fatal("no deadline checkpoint")
	}
	end := time.Now()
	if end.Before(mark.Deadline) || end.Sub(mark.Deadline) > 700*time.Millisecond {
		t.Errorf("resumed window ended at %s, original deadline %s", end.Format(time.StampMilli), mark.Deadline.Local().Format(time.StampMilli))
	}
	if d := mark.Deadline.Sub(start); d < 3*time.Second || d > 3200*time.Millisecond {
		t.Errorf("deadline %s after the start, want 3s", d)
	}
	s := w.samples(t)
	if got := s[len(s)-1].LogMatches[appLog]; got != 1 {
		t.Errorf("matches %d, want 1: the line written while down, counted once", got)
	}
	if !out.Outputs["passed"].True() || !strings.Contains(w.out.String(), "resuming the window") {
		t.Errorf("outcome %+v\n%s", out, w.out.String())
	}
}

// upgrader approve ends a window early, as passed.
func TestObserve_approveEndsEarly(t *testing.T) {
	bed := testbed.New(t, "web1")
	w := newBedWindow(t, bed, `
  duration = "72h"
  interval = "300ms"
  hosts    = [host.web1]`)
	time.AfterFunc(time.Second, func() { w.env.Approve("observe.soak") })
	start := time.Now()
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("approval ended the window after %s", el)
	}
	if !out.Outputs["passed"].True() || !strings.Contains(out.Message, "approved") {
		t.Errorf("outcome %+v", out)
	}
}

// A host whose sshd is down for a moment is a failed check for those
// intervals, not an instant failure; it is sampled again when sshd is back.
func TestObserve_unreachableCountsAsFailedCheck(t *testing.T) {
	bed := testbed.New(t, "web1", "web2")
	w := newBedWindow(t, bed, `
  duration           = "6s"
  interval           = "300ms"
  hosts              = [host.web1, host.web2]
  max_check_failures = 1000`)
	h := bed.Host("web2")
	time.AfterFunc(time.Second, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.StopSSH(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := h.StartSSH(ctx); err != nil {
			t.Error(err)
		}
	})
	out, err := w.apply(context.Background())
	if err != nil {
		t.Fatalf("window failed on a short outage: %v\n%s", err, w.out.String())
	}
	var down, backAfter int
	for _, r := range w.samples(t) {
		if r.Host != "web2" {
			continue
		}
		if r.Unreachable > 0 {
			down++
			if !strings.Contains(r.Error, "web2") && !strings.Contains(r.Error, h.Address) {
				t.Errorf("unreachable sample does not name the host: %q", r.Error)
			}
		} else if down > 0 && r.Mem != nil {
			backAfter++
		}
	}
	if down == 0 || backAfter == 0 || !out.Outputs["passed"].True() {
		t.Errorf("web2: %d unreachable samples, %d good ones after; outcome %+v\n%s", down, backAfter, out, w.out.String())
	}

	// The same outage fails the window at once with unreachable_fails = true.
	w2 := newBedWindow(t, bed, `
  duration          = "20s"
  interval          = "300ms"
  hosts             = [host.web1, host.web2]
  unreachable_fails = true`)
	time.AfterFunc(time.Second, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.StopSSH(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = h.StartSSH(ctx)
	})
	_, err = w2.apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `host "web2" could not be sampled (unreachable_fails = true)`) {
		t.Fatalf("error = %v", err)
	}
}

// BenchmarkObserve_sample10Hosts is one observation sample (one round) of 10
// real test hosts, each with a followed log.
func BenchmarkObserve_sample10Hosts(b *testing.B) {
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i+1)
	}
	bed := testbed.New(b, names...)
	env := &modtest.Env{ID: "bench", Dir: b.TempDir(), Targets: map[string]modules.Target{}}
	refs := make([]string, len(names))
	for i, n := range names {
		tg, err := bed.Target(n)
		if err != nil {
			b.Fatal(err)
		}
		env.Targets[n] = tg
		refs[i] = "host." + n
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if _, err := bed.Host(n).Exec(ctx, "mkdir -p /var/log/app && seq 1 1000 | sed 's/^/INFO line /' > "+appLog+" && chmod 644 "+appLog); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	cfg, _ := mustSettings(b, `observe "bench" {
  duration           = "72h"
  interval           = "1m"
  hosts              = [`+strings.Join(refs, ", ")+`]
  max_cpu_percent    = 100
  max_memory_percent = 100
  max_disk_percent   = 100
  log {
    path        = "`+appLog+`"
    pattern     = "ERROR"
  }
}`, names, nil)
	req := &modules.Request{Config: cfg, Node: "observe.bench", Index: -1, Env: env}
	s, _ := parseSettings(cfg, false)
	w, err := newWindow(req, s)
	if err != nil {
		b.Fatal(err)
	}
	defer w.out.Close()
	ctx := context.Background()
	if err := w.round(ctx); err != nil { // connections up, baseline taken
		b.Fatal(err)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := w.round(ctx); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
}

// A log the deploy user may not read is a plan warning and noted in every
// sample, instead of looking like a quiet log.
func TestObserve_unreadableLog(t *testing.T) {
	bed := testbed.New(t, "web1")
	w := newBedWindow(t, bed, `
  duration = "1s"
  interval = "300ms"
  hosts    = [host.web1]
  log {
    path    = "/var/log/app/secret.log"
    pattern = "ERROR"
  }`)
	hexec(t, bed.Host("web1"), "echo 'ERROR hidden' > /var/log/app/secret.log && chown root:root /var/log/app/secret.log && chmod 600 /var/log/app/secret.log")
	p, err := New().Plan(context.Background(), &modules.Request{Config: w.cfg, Node: "observe.soak", Index: -1, Env: w.env})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], `host "web1": log /var/log/app/secret.log is not readable by user deploy`) {
		t.Errorf("plan warnings %q", p.Warnings)
	}
	if _, err := w.apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range w.samples(t) {
		if !strings.Contains(r.Error, "log /var/log/app/secret.log is not readable") {
			t.Errorf("sample without the note: %+v", r)
		}
	}
	if !strings.Contains(w.out.String(), "is not readable by user deploy") {
		t.Errorf("run log:\n%s", w.out.String())
	}
}

// A filesystem that fills up during the window breaches max_disk_percent;
// the message names the mount point of the watched path.
func TestObserve_diskFills(t *testing.T) {
	bed := testbed.New(t, "web1")
	h := bed.Host("web1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.MountTmpfs(ctx, "/srv/data", "1m"); err != nil {
		t.Fatal(err)
	}
	w := newBedWindow(t, bed, `
  duration         = "20s"
  interval         = "300ms"
  hosts            = [host.web1]
  disk_paths       = ["/srv/data/db"]
  max_disk_percent = 80`)
	hexec(t, h, "mkdir -p /srv/data/db")
	time.AfterFunc(time.Second, func() {
		if _, err := h.Exec(context.Background(), "head -c 900000 /dev/zero > /srv/data/db/big"); err != nil {
			t.Error(err)
		}
	})
	_, err := w.apply(context.Background())
	if err == nil || !regexp.MustCompile(`host "web1": disk /srv/data (8[1-9]|9[0-9]|100)(\.[0-9])?% is above max_disk_percent 80%`).MatchString(err.Error()) {
		t.Fatalf("error = %v", err)
	}
	first := w.samples(t)[0]
	if first.Disk["/srv/data"] > 10 {
		t.Errorf("first sample %+v: the empty filesystem should be nearly unused", first)
	}
}
