package faults

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// canary is a sensitive value that must never show up where it does not
// belong. Unique, so a hit in the shared process list is ours.
const canary = "CANARY-q7Zt93xfWk"

// TestCanary_secretNowhere runs a procedure that uses a sensitive variable
// every way it can (a run's env, a command line through shellquote, a
// template, a command that echoes it on stderr and fails, a check), then
// searches for it in every output (human and -json, plan, apply, status,
// report), the saved plan file, every file of the state directory, the
// remote process list sampled during the run, and every file left in the
// hosts' temporary directories and beside the files written.
func TestCanary_secretNowhere(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "web")
	h := w.bed.Host("web")
	w.exec("web", "rm -rf /opt/sec && mkdir -p /opt/sec && chown deploy: /opt/sec")
	w.write("app.conf.tmpl", "password = ${token}\n")
	w.write("main.hcl", `
variable "token" {
  type      = string
  sensitive = true
}

step "use" {
  host            = host.web
  backup_required = false
  run {
    command = "test \"$TOKEN\" = ${shellquote(var.token)} && sleep 1"
    env     = { TOKEN = var.token }
  }
  template {
    source      = "app.conf.tmpl"
    destination = "/opt/sec/app.conf"
    mode        = "0600"
    vars        = { token = var.token }
  }
  run {
    command = "printf %s ${shellquote(base64encode(var.token))} | base64 -d | sha256sum > /opt/sec/sum; sleep 1"
  }
}

# Only shell built-ins get the secret as an argument: an external program's
# argv is the configuration's choice, not upgrader's.
check "sees_it" {
  depends_on = [step.use]
  command {
    host          = host.web
    command       = "[ \"$(cat /opt/sec/app.conf)\" = \"password = \"${shellquote(var.token)} ] && echo 1"
    expect_output = "1"
  }
}

step "fails" {
  host            = host.web
  backup_required = false
  depends_on      = [check.sees_it]
  run {
    command = "echo \"token is $TOKEN\" >&2; exit 3"
    env     = { TOKEN = var.token }
  }
}
`)
	w.write("secret.vars.hcl", `token = "`+canary+`"`+"\n")

	// Sample every process's command line on the host while upgrader runs.
	stop := make(chan struct{})
	sampled := make(chan string, 1)
	go func() {
		var all strings.Builder
		for {
			select {
			case <-stop:
				sampled <- all.String()
				return
			default:
			}
			out, _ := h.Exec(context.Background(), `for i in 1 2 3 4 5 6 7 8 9 10; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' '; echo; done`)
			all.WriteString(out)
		}
	}()

	outputs := map[string]result{}
	planFile := filepath.Join(t.TempDir(), "plan.json")
	outputs["plan"] = w.upgrader("plan", "-no-color", "-var-file", "secret.vars.hcl", "-out", planFile)
	outputs["plan -json"] = w.upgrader("plan", "-json", "-var-file", "secret.vars.hcl")
	outputs["apply"] = w.upgrader("apply", "-no-color", planFile)
	w.exec("web", "echo 'password = old' > /opt/sec/app.conf")
	outputs["apply -json"] = w.upgrader("apply", "-json", "-auto-approve", "-var-file", "secret.vars.hcl")
	time.Sleep(200 * time.Millisecond)
	close(stop)
	ps := <-sampled
	outputs["status"] = w.upgrader("status", "-no-color")
	outputs["status -json"] = w.upgrader("status", "-json")
	outputs["report"] = w.upgrader("report", "-o", "-")

	if r := outputs["apply"]; r.code != 1 || !strings.Contains(r.stdout+r.stderr, "step.fails") {
		t.Fatalf("the procedure should fail at step.fails and roll back: %s", r)
	}
	// The secret was really used: the template and the sha256 hold it.
	if got := w.exec("web", "cat /opt/sec/app.conf 2>/dev/null; ls /opt/sec"); !strings.Contains(got, "sum") {
		t.Fatalf("the procedure did not run: %q", got)
	}
	// The sampler did see the run's processes (sleep 1 runs twice a run).
	if !strings.Contains(ps, "sleep 1") {
		t.Errorf("the process sampler saw none of the run's commands (%d bytes sampled)", len(ps))
	}

	for name, r := range outputs {
		if strings.Contains(r.stdout+r.stderr, canary) {
			t.Errorf("%s prints the secret:\n%s", name, excerpt(r.stdout+r.stderr))
		}
	}
	check := func(where string, data []byte) {
		if strings.Contains(string(data), canary) {
			t.Errorf("%s holds the secret:\n%s", where, excerpt(string(data)))
		}
	}
	b, _ := os.ReadFile(planFile)
	check("the saved plan "+planFile, b)
	filepath.WalkDir(w.stateDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			check(p, b)
		}
		return nil
	})
	check("the remote process list", []byte(ps))
	// Remote files: only the template's destination may hold it (0600).
	left := w.exec("web", "grep -rlF "+canary+" /tmp /var/tmp /opt /home/deploy 2>/dev/null || true")
	for _, f := range strings.Fields(left) {
		if f != "/opt/sec/app.conf" {
			t.Errorf("remote file %s holds the secret", f)
		}
	}
	if ls := w.exec("web", "ls -A /opt/sec /tmp"); strings.Contains(ls, "upgrader") {
		t.Errorf("temporary files left on the host:\n%s", ls)
	}
}

// excerpt shows the lines holding the canary.
func excerpt(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, canary) {
			if len(l) > 300 {
				i := strings.Index(l, canary)
				l = l[max(0, i-150):min(len(l), i+150)]
			}
			out = append(out, "  "+l)
		}
	}
	return strings.Join(out, "\n")
}
