package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

// TestPowerOff_midApply: host b goes silent (its link cut: no RST, no FIN,
// as a host that lost power) while a step runs on it, one host at a time
// over a, b, c. The run fails; the rollback restores a, cannot reach b and
// says so (exit 3, b named), and never touches c, which the step had not
// reached. Once b is back, `upgrader resume` finishes the rollback on b.
func TestPowerOff_midApply(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a", "b", "c")
	for _, h := range []string{"a", "b", "c"} {
		w.exec(h, "rm -rf /opt/pw && mkdir -p /opt/pw && echo v1 > /opt/pw/app.conf && touch -d '2020-01-01' /opt/pw/app.conf && chown -R deploy: /opt/pw")
	}
	w.exec("b", "touch /opt/pw/hang")
	w.write("v2.conf", "v2\n")
	w.write("main.hcl", `
step "deploy" {
  hosts           = [host.a, host.b, host.c]
  batch_size      = 1
  backup_required = false
  upload {
    source      = "v2.conf"
    destination = "/opt/pw/app.conf"
  }
  run {
    command = "while [ -e /opt/pw/hang ]; do sleep 0.1; done"
  }
}
`)
	cStat := w.exec("c", "stat -c '%y %i' /opt/pw/app.conf")
	done := make(chan result, 1)
	go func() { done <- w.upgrader("apply", "-auto-approve", "-no-color") }()
	deadline := time.Now().Add(60 * time.Second)
	for strings.TrimSpace(w.exec("b", "cat /opt/pw/app.conf")) != "v2" {
		if time.Now().After(deadline) {
			t.Fatal("the step never reached host b")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // b is in its run action now
	b := w.bed.Host("b")
	t.Cleanup(func() { b.RestoreLink(context.Background()) })
	if err := b.CutLink(context.Background()); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	r := <-done
	t.Logf("apply ended %v after the power-off", time.Since(cut).Round(time.Second))
	if r.code != 3 || !strings.Contains(r.stdout+r.stderr, `"b"`) {
		t.Fatalf("apply: want exit 3 (rollback incomplete) naming host b: %s", r)
	}
	// The half-open link is noticed within 30 s (keepalives), not hung on.
	found := false
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "FAILED" && strings.Contains(l, "keepalive") {
			at, err := time.ParseInLocation("15:04:05", f[0], time.Local)
			if err != nil {
				t.Fatal(err)
			}
			at = time.Date(cut.Year(), cut.Month(), cut.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.Local)
			if d := at.Sub(cut.Truncate(time.Second)); d > 30*time.Second {
				t.Errorf("the dead link was noticed %v after the power-off", d)
			}
			found = true
		}
	}
	if !found {
		t.Errorf("no FAILED line naming the keepalives: %s", r)
	}
	// Everything left is named, per host; c is not among it.
	left := r.stdout[strings.Index(r.stdout, "Left to undo"):]
	if !strings.Contains(left, "on b") || !strings.Contains(left, "on a") || strings.Contains(left, "on c") {
		t.Errorf("what is left to undo:\n%s", left)
	}
	if got := w.exec("c", "stat -c '%y %i' /opt/pw/app.conf"); got != cStat {
		t.Errorf("host c, never reached, was touched: %q -> %q", cStat, got)
	}
	for _, ev := range w.events() {
		if ev.Host == "c" {
			t.Errorf("journal has an event for host c: %+v", ev)
		}
		if ev.Type == journal.UndoFinished && ev.Host == "b" {
			t.Errorf("journal says b was undone: %+v", ev)
		}
	}
	// b back: resume finishes the rollback there.
	if err := b.RestoreLink(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.exec("b", "rm -f /opt/pw/hang") // ends the run action still waiting there
	if r := w.upgrader("rollback", "-no-color"); r.code != 0 {
		t.Fatalf("rollback after b came back: %s", r)
	}
	for _, h := range []string{"a", "b"} {
		if got := strings.TrimSpace(w.exec(h, "cat /opt/pw/app.conf")); got != "v1" {
			t.Errorf("host %s after the rollback: %q", h, got)
		}
	}
}
