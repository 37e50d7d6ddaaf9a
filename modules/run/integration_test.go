package run

import (
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// The run action on a real host: guards, env, sudo, expected exits,
// captured output, failures naming the host, and the timeout.
func TestRun_realHost(t *testing.T) {
	bed := testbed.New(t, "web")
	tg, err := bed.Target("web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bed.Host("web").Exec(t.Context(), "mkdir -p /opt/app/bin && touch /opt/app/.installed"); err != nil {
		t.Fatal(err)
	}
	r := &modtest.Runner{T: t, Env: &modtest.Env{ID: "r1", Targets: map[string]modules.Target{"web": tg}}, Host: "web", Dir: t.TempDir()}
	cases := []struct {
		name, body string
		plan       modules.Change
		skipped    string // apply skipped with this reason
		message    string // substring of Outcome.Message
		err        string // substring of the apply error
	}{
		{"creates exists", `command = "false"
  creates = "/opt/app/.installed"`, modules.Skip, "/opt/app/.installed exists", "", ""},
		{"unless exits 0", `command = "false"
  unless = "test -d /opt/app/bin"`, modules.Skip, `unless "test -d /opt/app/bin" exited 0`, "", ""},
		{"unless exits 1", `command = "echo ran"
  unless = "test -d /nowhere"`, modules.Exec, "", "ran", ""},
		{"env and output", `command = "echo \"$GREETING\"; echo warn >&2"
  env = { GREETING = "hello deploy" }`, modules.Exec, "", "exit 0: hello deploy\nwarn", ""},
		{"sudo", `command = "id -un"
  sudo = true`, modules.Exec, "", "root", ""},
		{"tty", `command = "[ -t 0 ] && tty"
  tty = true`, modules.Exec, "", "/dev/pts/", ""},
		{"no tty", `command = "[ -t 0 ] || echo no terminal"`, modules.Exec, "", "no terminal", ""},
		{"expected non-zero exit", `command = "exit 3"
  expect_exit = [0, 3]`, modules.Exec, "", "exit 3", ""},
		{"failure", `command = "echo boom >&2; exit 2"`, modules.Exec, "", "", `host "web": echo boom >&2; exit 2: exit 2, expected [0]: boom`},
		{"timeout", `command = "sleep 30"
  timeout = "1s"`, modules.Exec, "", "", `host "web"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.T = t
			m := &Run{}
			cfg := r.Decode(m, "run {\n  "+c.body+"\n}\n")
			if p := r.Plan(m, cfg); p.Change != c.plan {
				t.Fatalf("plan = %s (%s), want %s", p.Change, p.Reason, c.plan)
			}
			start := time.Now()
			out, _, err := r.Apply(m, cfg)
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("took %v", time.Since(start))
				}
			case err != nil:
				t.Fatal(err)
			case c.skipped != "":
				if out.Skipped != c.skipped || out.Changed {
					t.Fatalf("outcome = %+v, want skipped %q", out, c.skipped)
				}
			default:
				if !strings.Contains(out.Message, c.message) || !out.Changed {
					t.Fatalf("outcome = %+v, want message with %q", out, c.message)
				}
			}
		})
	}
	if !strings.Contains(r.Log.String(), "hello deploy") {
		t.Errorf("command output was not streamed to the log: %q", r.Log.String())
	}
}
