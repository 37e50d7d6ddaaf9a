package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// before is what a rollback must give back.
type before struct {
	primary, standby string // trees
	prodDB           string
}

func (w *world) snapshot() before {
	return before{primary: w.tree("primary"), standby: w.tree("standby"), prodDB: w.dbState(w.env.ProdDSN)}
}

// expectRolledBack asserts production is exactly as before the run: traffic
// on the primary, both hosts' files identical, both on 1.0.0, the database's
// schema, rows and migration version as they were.
func (w *world) expectRolledBack(b before, r result) {
	w.t.Helper()
	if r.code != 1 {
		w.t.Errorf("apply exit code %d, want 1 (failed and fully rolled back)", r.code)
	}
	if up := w.upstream(); up != "primary" {
		w.t.Errorf("traffic goes to %s, want primary", up)
	}
	for _, h := range []string{"primary", "standby"} {
		if v := w.version(h); v != "1.0.0" {
			w.t.Errorf("%s serves %q, want 1.0.0", h, v)
		}
	}
	if got := w.tree("standby"); got != b.standby {
		w.t.Errorf("standby's /opt/app and /etc/app differ from before the run:\nbefore:\n%s\nafter:\n%s", b.standby, got)
	}
	if got := w.tree("primary"); got != b.primary {
		w.t.Errorf("primary's /opt/app and /etc/app differ from before the run:\nbefore:\n%s\nafter:\n%s", b.primary, got)
	}
	if got := w.dbState(w.env.ProdDSN); got != b.prodDB {
		w.t.Errorf("production database differs from before the run:\nbefore:\n%s\nafter:\n%s", b.prodDB, got)
	}
}

func (w *world) failRun(r result) {
	w.t.Helper()
	w.t.Fatalf("upgrader apply exited %d:\n%s", r.code, tail(r.output, 120))
}

// ranOutput is what the run printed after the plan.
func ranOutput(r result) string {
	return r.output[max(strings.Index(r.output, " started\n"), 0):]
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"[...]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Scenario 1: v1 everywhere -> apply -> v2 on both, traffic on the primary,
// schema migrated, every backup verified, exit 0.
func TestActiveStandby_happyPath(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	r := w.apply("-var", "standby_observation=4s", "-var", "primary_observation=4s")
	if r.code != 0 {
		w.failRun(r)
	}
	for _, h := range []string{"primary", "standby"} {
		if v := w.version(h); v != "2.0.0" {
			t.Errorf("%s serves %q, want 2.0.0", h, v)
		}
	}
	if up := w.upstream(); up != "primary" {
		t.Errorf("traffic goes to %s, want primary", up)
	}
	if !w.hasColumn(w.env.ProdDSN, "items", "stock") {
		t.Errorf("production was not migrated:\n%s", w.dbState(w.env.ProdDSN))
	}
	// Every backup of the run is there and verifies against its manifest.
	if v := w.upgrader("backups", "verify"); v.code != 0 {
		t.Errorf("upgrader backups verify: exit %d\n%s", v.code, v.output)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range []string{"primary", "standby", "prod_db", "test_env", "test_db", "lb_before_switch", "primary_before_upgrade", "lb_before_switch_back"} {
		dirs, _ := filepath.Glob(filepath.Join(w.env.Dir, ".upgrader", "backups", "*", name))
		if len(dirs) != 1 {
			t.Errorf("backup %q: %d directories under .upgrader/backups, want 1", name, len(dirs))
			continue
		}
		m, st, err := backup.VerifyDir(ctx, dirs[0])
		if err != nil {
			t.Errorf("backup %q: %v", name, err)
			continue
		}
		t.Logf("backup %-24s verified: %d bytes, sha256 %.12s", name, st.Bytes, m.SHA256)
	}
	w.reportClient()
}

// Scenario 2 (7.1): the new build fails the regression checks after the
// switch: traffic back on the primary, standby back on v1 byte for byte,
// production database as before, exit 1.
func TestActiveStandby_regressionAfterSwitch(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	b := w.snapshot()
	r := w.apply("-var", "artifact=dist/app-2.0.0-faulty-regression.tar.gz",
		"-var", "standby_observation=4s", "-var", "primary_observation=4s")
	w.expectRolledBack(b, r)
	if ran := ranOutput(r); !strings.Contains(ran, "check.regression failed") || !strings.Contains(ran, "/api/ping: expected status 200, got 500") {
		t.Errorf("the output does not name the failing check and URL:\n%s", tail(ran, 60))
	}
	evs := w.journal()
	if n := count(evs, "node_started")["observe.standby"]; n != 0 {
		t.Errorf("observe.standby started although the regression checks failed")
	}
	// 7.1: switch back to the primary at once, then roll the standby back.
	undone := order(evs, "undo_finished")
	if want := []string{"step.switch_to_standby", "step.upgrade_standby", "migrate.prod"}; strings.Join(undone, " ") != strings.Join(want, " ") {
		t.Errorf("undone in the order %v, want %v", undone, want)
	}
	w.reportClient()
}

// Scenario 3 (8.1): ERROR lines in the standby's log during its observation:
// the same outcome as 7.1.
func TestActiveStandby_errorsDuringStandbyObservation(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	b := w.snapshot()
	r := w.apply("-var", "artifact=dist/app-2.0.0-faulty-errors.tar.gz",
		"-var", "standby_observation="+(FaultAfter+20*time.Second).String(), "-var", "primary_observation=4s")
	w.expectRolledBack(b, r)
	if !strings.Contains(r.output, "ERROR order sync failed") {
		t.Errorf("the output does not show the matching log line:\n%s", tail(r.output, 60))
	}
	evs := w.journal()
	if n := count(evs, "node_failed")["observe.standby"]; n != 1 {
		t.Errorf("observe.standby failed %d times in the journal, want 1", n)
	}
	if n := count(evs, "node_started")["step.upgrade_primary"]; n != 0 {
		t.Errorf("the primary was upgraded although the standby's window failed")
	}
	w.reportClient()
}

// Scenario 3b (8.1, what users feel): the "shed" build refuses every 20th
// request with 503 (5%: the regression checks, 4 requests an attempt and 4
// attempts, almost never fail 4 attempts in a row) once it has run for FaultAfter. It logs them as warnings
// and uses no more CPU or memory: only the standby's request metrics, read
// from the world's Prometheus, show it. The error-ratio bound catches it
// during the standby window and the procedure rolls back as in 7.1.
func TestActiveStandby_usersSeeErrorsViaPrometheus(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	b := w.snapshot()
	r := w.apply("-var", "artifact=dist/app-2.0.0-faulty-shed.tar.gz",
		"-var", "standby_observation="+(FaultAfter+30*time.Second).String(), "-var", "primary_observation=4s")
	w.expectRolledBack(b, r)
	evs := w.journal()
	var failure string
	for _, e := range evs {
		if e.Type == "node_failed" && e.Node == "observe.standby" {
			failure = string(e.Data)
		}
	}
	for _, want := range []string{`metric \"error_ratio\": `, "is above max 0.01", "query: (sum(rate(app_http_requests_total{instance=", "breach_for 3s"} {
		if !strings.Contains(failure, want) {
			t.Errorf("observe.standby's failure in the journal lacks %q:\n%s", want, failure)
		}
	}
	for _, not := range []string{"cpu", "memory", "log /var/log/app"} {
		if strings.Contains(failure, not) {
			t.Errorf("observe.standby failed on %q too: host metrics alone would have passed it:\n%s", not, failure)
		}
	}
	// The regression check may see a 503 too (every 20th request): that it
	// also failed in the same interval is not wrong, only rare.
	if strings.Contains(failure, `check \"regression`) {
		t.Logf("the regression check failed in the same interval as the metric:\n%s", failure)
	}
	if n := count(evs, "node_started")["step.upgrade_primary"]; n != 0 {
		t.Errorf("the primary was upgraded although the standby's window failed")
	}
	// The host metrics stayed within their bounds the whole window; the
	// metric lines show the ratio rising above 1%.
	runs, _ := filepath.Glob(filepath.Join(w.env.Dir, ".upgrader", "runs", "*", "metrics.jsonl"))
	if len(runs) != 1 {
		t.Fatalf("metrics.jsonl files: %v", runs)
	}
	var samples, metrics, deciding int
	var maxRatio float64
	err := observe.ReadRecords(runs[0], func(rec *observe.Record) error {
		if rec.Node != "observe.standby" {
			return nil
		}
		switch rec.Type {
		case observe.RecordSample:
			samples++
			if len(rec.Over) > 0 {
				t.Errorf("a host sample above its bounds %v: %s", rec.Over, rec.Metrics())
			}
		case observe.RecordMetric:
			metrics++
			if rec.Value != nil && *rec.Value > maxRatio {
				maxRatio = *rec.Value
			}
			if rec.Deciding {
				deciding++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if samples == 0 || metrics == 0 || deciding != 1 || maxRatio < 0.02 {
		t.Errorf("observe.standby: %d host samples, %d metric lines, %d deciding, highest ratio %g; want both kinds, one deciding, a ratio >= 0.02", samples, metrics, deciding, maxRatio)
	}
	st := w.upgrader("status", "-no-color", ".")
	if !strings.Contains(st.output, "metric error_ratio") {
		t.Errorf("upgrader status does not show the metric:\n%s", st.output)
	}
	t.Logf("observe.standby: %d host samples (within bounds), %d metric lines, highest error ratio %.3f", samples, metrics, maxRatio)
}

// Scenario 3c: the world's Prometheus dies during the standby window. The
// error-ratio metric has no data; on_no_data = "inconclusive" makes that a
// breach once it lasts breach_for (3 s): the run does not hang, rolls back,
// and the journal says why (the last interval's outcome and the failure).
func TestActiveStandby_prometheusDownDuringWindow(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	b := w.snapshot()
	go func() {
		// The standby window is reached about 30-60 s into the run; stop
		// Prometheus once the window has started.
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			for _, e := range w.journal() {
				if e.Type == "node_started" && e.Node == "observe.standby" {
					time.Sleep(2 * time.Second)
					w.env.Prom.Down()
					return
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	start := time.Now()
	r := w.apply("-var", "standby_observation=3m", "-var", "primary_observation=4s")
	w.expectRolledBack(b, r)
	if took := time.Since(start); took > 3*time.Minute {
		t.Errorf("the run took %v: it waited out the window instead of failing", took)
	}
	var failure string
	var checkpoints int
	for _, e := range w.journal() {
		if e.Type == "node_failed" && e.Node == "observe.standby" {
			failure = string(e.Data)
		}
		if e.Type == "checkpoint" && strings.Contains(string(e.Data), `no data: metric_source`) {
			checkpoints++
		}
	}
	if !strings.Contains(failure, `metric \"error_ratio\": no data (on_no_data = \"inconclusive\") since`) || !strings.Contains(failure, "not reachable") {
		t.Errorf("observe.standby's failure in the journal:\n%s", failure)
	}
	if checkpoints < 2 {
		t.Errorf("%d checkpoints in the journal record the intervals without data, want every one (>= 2)", checkpoints)
	}
	t.Logf("failure: %.400s", failure)
}

// Scenario 4 (10.1 + escalate): the primary misbehaves during its
// observation; traffic goes to the standby, which has the same faulty build,
// so the problem persists and everything is rolled back to v1.
func TestActiveStandby_primaryMisbehavesEscalates(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	b := w.snapshot()
	r := w.apply("-var", "artifact=dist/app-2.0.0-faulty-errors.tar.gz",
		"-var", "standby_observation=2s", "-var", "primary_observation="+(FaultAfter+20*time.Second).String())
	w.expectRolledBack(b, r)
	evs := w.journal()
	if n := count(evs, "node_failed")["observe.primary"]; n != 1 {
		t.Errorf("observe.primary failed %d times in the journal, want 1", n)
	}
	// 10.1: traffic to the standby, the primary restored; then, the standby
	// failing too, everything else, newest first.
	undone := strings.Join(order(evs, "undo_finished"), " ")
	if want := "step.switch_to_primary step.upgrade_primary step.switch_to_standby step.upgrade_standby migrate.prod"; !strings.HasPrefix(undone, want) {
		t.Errorf("undone in the order %s, want %s first", undone, want)
	}
	w.reportClient()
}

// Scenario 5 (3.1 fails): the test schema differs in a way the production
// program cannot live with (stock has no default: v1's writes fail). The run
// stops before production is touched and reports the diff and the check.
func TestActiveStandby_schemaIncompatibleStops(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	w.psql(w.env.TestDSN, "ALTER TABLE items ALTER COLUMN stock DROP DEFAULT")
	b := w.snapshot()
	lb := w.tree("lb")
	r := w.apply("-var", "standby_observation=4s", "-var", "primary_observation=4s")
	w.expectRolledBack(b, r)
	if got := w.tree("lb"); got != lb {
		t.Errorf("lb changed although the run stopped before production")
	}
	// What developers get: the diff and the failing check, from the run
	// itself (not from the plan printed before it).
	ran := ranOutput(r)
	for _, want := range []string{"~ table items", "+ column stock", "check.compat_flows failed", "POST http://" + w.env.Host("test").Address + ":8080/items", `null value in column \"stock\"`} {
		if !strings.Contains(ran, want) {
			t.Errorf("the run's output does not show %q (schema diff, failing check):\n%s", want, tail(ran, 80))
		}
	}
	evs := w.journal()
	for _, n := range []string{"step.upgrade_standby", "migrate.prod", "step.switch_to_standby"} {
		if count(evs, "node_started")[n] > 0 {
			t.Errorf("%s started although the compatibility run failed", n)
		}
	}
	if v := w.version("test"); v != "2.0.0" {
		t.Errorf("the test environment was not restored: serves %q", v)
	}
	w.reportClient()
}

// Scenario 6: upgrader is killed (SIGKILL) during the standby's observation;
// `upgrader resume` completes the run without repeating completed nodes.
func TestActiveStandby_killedThenResumed(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	args := append([]string{"apply", "-auto-approve", "-no-color"}, w.commonVars()...)
	args = append(args, "-var", "standby_observation=15s", "-var", "primary_observation=3s", ".")
	cmd := exec.Command(upgraderBin, args...)
	cmd.Dir = w.env.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(3 * time.Minute)
	for count(w.journal(), "node_started")["observe.standby"] == 0 {
		select {
		case <-exited:
			t.Fatalf("apply ended before observe.standby started:\n%s", tail(out.String(), 80))
		default:
		}
		if time.Now().After(deadline) {
			killProcess(cmd.Process)
			<-exited
			t.Fatalf("observe.standby never started:\n%s", tail(out.String(), 80))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	killProcess(cmd.Process)
	<-exited
	w.saveOutput("apply-killed", out.String())
	pidBefore := w.exec("standby", "cat /var/log/app/app.pid")
	startedBefore := count(w.journal(), "node_finished")

	r := w.upgrader(append([]string{"resume", "-no-color"}, append(w.commonVars(), "-var", "standby_observation=15s", "-var", "primary_observation=3s")...)...)
	t.Logf("upgrader resume: exit %d after %v (killed %v after the window opened)", r.code, r.took.Round(100*time.Millisecond), 3*time.Second)
	if r.code != 0 {
		t.Fatalf("resume exited %d:\n%s", r.code, tail(r.output, 100))
	}
	// The window kept its deadline: resume waited only what was left of it.
	// "observing standby and metrics error_ratio until ...": the window names its metrics too
	opened := regexp.MustCompile(`observing standby\b.* until (\S+)`).FindStringSubmatch(out.String())
	resumed := regexp.MustCompile(`resuming the window: standby\b.* until (\S+)`).FindStringSubmatch(r.output)
	if opened == nil || resumed == nil || opened[1] != resumed[1] {
		t.Errorf("the window's deadline: opened %q, resumed %q; want the same", opened, resumed)
	} else {
		t.Logf("the standby's window resumed to its original deadline %s", resumed[1])
	}
	evs := w.journal()
	finished := count(evs, "node_finished")
	for node, n := range finished {
		if n > 1 {
			t.Errorf("%s finished %d times: resume repeated it", node, n)
		}
	}
	for node := range startedBefore {
		if count(evs, "node_started")[node] > 1 {
			t.Errorf("%s, complete before the kill, was started again on resume", node)
		}
	}
	if pidAfter := w.exec("standby", "cat /var/log/app/app.pid"); pidAfter != pidBefore {
		t.Errorf("the standby's app was restarted by resume (pid %s -> %s)", strings.TrimSpace(pidBefore), strings.TrimSpace(pidAfter))
	}
	for _, h := range []string{"primary", "standby"} {
		if v := w.version(h); v != "2.0.0" {
			t.Errorf("%s serves %q, want 2.0.0", h, v)
		}
	}
	if up := w.upstream(); up != "primary" {
		t.Errorf("traffic goes to %s, want primary", up)
	}
	w.reportClient()
}

// psql runs SQL on a database from the controller.
func (w *world) psql(dsn, sql string) {
	w.t.Helper()
	out, err := exec.Command("psql", dsn, "-v", "ON_ERROR_STOP=1", "-qc", sql).CombinedOutput()
	if err != nil {
		w.t.Fatalf("psql %q: %v: %s", sql, err, out)
	}
}

// Scenario 3.2: production already has the release's schema: the schemas
// match, so the compatibility run and the migration are skipped (shown as
// skipped), the test environment is left alone, and the rest runs.
func TestActiveStandby_schemasMatchSkipCompat(t *testing.T) {
	need(t)
	t.Parallel()
	w := newWorld(t)
	up, err := os.ReadFile(filepath.Join(exampleDir, "migrations", "0002_add_stock.up.sql"))
	if err != nil {
		t.Fatal(err)
	}
	w.psql(w.env.ProdDSN, string(up)+"; UPDATE schema_migrations SET version = 2")
	testTree := w.tree("test")
	prodDB := w.dbState(w.env.ProdDSN)
	r := w.apply("-var", "standby_observation=3s", "-var", "primary_observation=3s")
	if r.code != 0 {
		w.failRun(r)
	}
	skipped := count(w.journal(), "node_skipped")
	for _, n := range []string{"backup.test_env", "backup.test_db", "step.compat_install", "check.compat_flows", "step.compat_restore", "migrate.prod"} {
		if skipped[n] != 1 {
			t.Errorf("%s was not skipped although the schemas match", n)
		}
	}
	if got := w.tree("test"); got != testTree {
		t.Errorf("the test environment changed although the schemas match")
	}
	if got := w.dbState(w.env.ProdDSN); got != prodDB {
		t.Errorf("production's schema or migration version changed:\nbefore:\n%s\nafter:\n%s", prodDB, got)
	}
	for _, h := range []string{"primary", "standby"} {
		if v := w.version(h); v != "2.0.0" {
			t.Errorf("%s serves %q, want 2.0.0", h, v)
		}
	}
	w.reportClient()
}
