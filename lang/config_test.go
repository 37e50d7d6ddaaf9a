package lang_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/zclconf/go-cty/cty"
)

func loadFull(t *testing.T, opts lang.Options) *lang.Config {
	t.Helper()
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	cfg, diags := lang.Load("testdata/valid/full", testSchemas(), opts)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cfg
}

func TestLoad_fullConfig(t *testing.T) {
	cfg := loadFull(t, lang.Options{})

	if got := cfg.HostOrder; !reflect.DeepEqual(got, []string{"primary", "standby"}) {
		t.Errorf("HostOrder = %v", got)
	}
	sb := cfg.Hosts["standby"]
	if sb.Conn.User != "ops" || sb.Conn.Port != 2222 || sb.Conn.Timeout != 5*time.Second || !strings.HasSuffix(sb.Conn.PrivateKeyFile, "testdata/valid/full/keys/id_ed25519") {
		t.Errorf("standby connection = %+v", sb.Conn)
	}
	if p := cfg.Hosts["primary"]; p.Conn.User != "deploy" || p.Conn.Port != 22 || p.Labels["role"] != "primary" {
		t.Errorf("primary = %+v", p)
	}
	db := cfg.Databases["prod"]
	if db.Driver != "postgres" || db.Host != "primary" || db.DSN != "postgres://app:s3cret@203.0.113.5/app" {
		t.Errorf("database = %+v", db)
	}
	if !cfg.Variables["db_password"].Sensitive || !cfg.Variables["db_password"].Value.HasMark(lang.SensitiveMark) {
		t.Errorf("db_password not marked sensitive")
	}
	if !lang.IsSensitive(cfg.Locals["dsn"]) {
		t.Errorf("local.dsn should be sensitive (derived from a sensitive variable)")
	}
	if got := cfg.Locals["artifact"]; got.AsString() != "dist/app-2.4.0.tar.gz" {
		t.Errorf("local.artifact = %#v", got)
	}

	if !reflect.DeepEqual(cfg.PhaseOrder, []string{"prepare", "standby"}) {
		t.Errorf("PhaseOrder = %v", cfg.PhaseOrder)
	}
	st := cfg.Phases["standby"]
	if st.Escalate == nil || !reflect.DeepEqual(st.Escalate.Checks, []string{"check.regression"}) || st.OnFailure != "rollback" {
		t.Errorf("phase standby = %+v", st)
	}

	want := map[string][]string{
		// phase order: entries of standby follow the exits of prepare
		"step.install":     {"backup.db", "backup.standby", "schema_check.prod"},
		"check.regression": {"backup.db", "backup.standby", "schema_check.prod"},
		"gate.go_primary":  {"check.regression", "step.install"},
		"step.primary":     {"backup.standby", "gate.go_primary", "step.install"},
		"backup.db":        nil,
	}
	for addr, deps := range want {
		n := cfg.Nodes[addr]
		if n == nil {
			t.Fatalf("no node %s", addr)
		}
		if !(len(n.DependsOn) == 0 && len(deps) == 0) && !reflect.DeepEqual(n.DependsOn, deps) {
			t.Errorf("%s.DependsOn = %v, want %v", addr, n.DependsOn, deps)
		}
		for _, d := range n.DependsOn {
			if r := cfg.DependencyRange(n, d); r.Start.Line == 0 {
				t.Errorf("%s: no range for dependency %s", addr, d)
			}
		}
	}
	inst := cfg.Nodes["step.install"]
	if inst.Phase != "standby" || inst.Step == nil || len(inst.Step.Actions) != 2 || len(inst.Step.Rollback) != 1 || !inst.Step.BackupRequired {
		t.Errorf("step.install = %+v / %+v", inst, inst.Step)
	}
	if k := []string{inst.Step.Actions[0].Kind, inst.Step.Actions[1].Kind, inst.Step.Rollback[0].Kind}; !reflect.DeepEqual(k, []string{"upload", "run", "restore"}) {
		t.Errorf("action order = %v", k)
	}
	// Phase order points at the phase's depends_on entry.
	if r := cfg.DependencyRange(cfg.Nodes["check.regression"], "backup.db"); r.Start.Line != 17 || r.Start.Column != 17 {
		t.Errorf("phase-order range = %v", r)
	}
	if c := cfg.Nodes["check.regression"].Check; c.Retries != 3 || c.Interval != time.Second || c.Timeout != 10*time.Second {
		t.Errorf("check = %+v", c)
	}
	if g := cfg.Nodes["gate.go_primary"].Gate; g.Message != "Upgrade primary to 2.4.0?" {
		t.Errorf("gate message = %q", g.Message)
	}
	if cfg.Hash == "" {
		t.Errorf("no hash")
	}
}

func TestEvalContext_unknownOutputsMarked(t *testing.T) {
	cfg := loadFull(t, lang.Options{})
	ctx := cfg.EvalContext(lang.RunInfo{}, nil)

	n := cfg.Nodes["step.primary"]
	hosts, diags := cfg.StepHosts(n, ctx)
	if diags.HasErrors() || !reflect.DeepEqual(hosts, []string{"primary"}) {
		t.Fatalf("StepHosts = %v, %s", hosts, diags.Error())
	}
	val, ranges, diags := lang.DecodeBody(n.Step.Actions[0].Body, n.Step.Actions[0].Spec, ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	cmd := val.GetAttr("command")
	if cmd.IsKnown() {
		t.Fatalf("command should be unknown at plan, got %#v", cmd)
	}
	if got := lang.AfterNodes(cmd); !reflect.DeepEqual(got, []string{"apply", "step.install"}) {
		t.Errorf("AfterNodes = %v", got)
	}
	if r, ok := ranges["command"]; !ok || r.Start.Line == 0 {
		t.Errorf("no range for command: %v", ranges)
	}

	// With outputs and a run, the same body is known.
	ctx = cfg.EvalContext(lang.RunInfo{ID: "r1", StartedAt: time.Unix(0, 0)}, map[string]cty.Value{
		"step.install": cty.ObjectVal(map[string]cty.Value{"changed": cty.True}),
	})
	inst := cfg.Nodes["step.install"]
	v, _, diags := lang.DecodeBody(inst.Step.Actions[0].Body, inst.Step.Actions[0].Spec, ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := v.GetAttr("destination").AsString(); got != "/tmp/app-r1.tgz" {
		t.Errorf("destination = %q", got)
	}
	obj := ctx.Variables["step"].GetAttr("install")
	if !obj.GetAttr("changed").True() || obj.GetAttr("name").AsString() != "install" || obj.GetAttr("kind").AsString() != "step" {
		t.Errorf("step.install = %#v", obj)
	}
	// A marked outputs object (a sensitive output) neither panics nor loses its mark.
	mctx := cfg.EvalContext(lang.RunInfo{}, map[string]cty.Value{
		"step.install": cty.ObjectVal(map[string]cty.Value{"changed": cty.True}).Mark(lang.SensitiveMark),
	})
	if ch := mctx.Variables["step"].GetAttr("install").GetAttr("changed"); !ch.HasMark(lang.SensitiveMark) {
		t.Errorf("mark lost: %#v", ch)
	}
	sc := ctx.Variables["schema_check"].GetAttr("prod")
	if sc.GetAttr("matches").IsKnown() || !sc.GetAttr("matches").HasMark(lang.AfterMark("schema_check.prod")) {
		t.Errorf("schema_check.prod.matches = %#v", sc.GetAttr("matches"))
	}
}

func TestEvalContext_applyTimestamp(t *testing.T) {
	cfg := loadFull(t, lang.Options{Apply: true})
	n := cfg.Nodes["step.primary"]
	ctx := cfg.EvalContext(lang.RunInfo{ID: "r1"}, map[string]cty.Value{
		"step.install": cty.ObjectVal(map[string]cty.Value{"changed": cty.False}),
	})
	v, _, diags := lang.DecodeBody(n.Step.Actions[0].Body, n.Step.Actions[0].Spec, ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if s := v.GetAttr("command"); !s.IsKnown() || !strings.HasPrefix(s.AsString(), "echo false 20") {
		t.Errorf("command = %#v", s)
	}
}

func TestLoad_varPrecedence(t *testing.T) {
	cases := []struct {
		name string
		opts lang.Options
		want string
	}{
		{"default", lang.Options{}, "2.4.0"},
		{"env", lang.Options{Env: map[string]string{"UPGRADER_VAR_version": "3.0.0"}}, "3.0.0"},
		{"var-file over env", lang.Options{Env: map[string]string{"UPGRADER_VAR_version": "3.0.0"}, VarFiles: []string{"testdata/vars/v4.vars.hcl"}}, "4.0.0"},
		{"-var over all", lang.Options{Env: map[string]string{"UPGRADER_VAR_version": "3.0.0"}, VarFiles: []string{"testdata/vars/v4.vars.hcl"}, Vars: []string{"version=5.0.0", "web_count=7"}}, "5.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loadFull(t, c.opts)
			if got := cfg.Variables["version"].Value.AsString(); got != c.want {
				t.Errorf("version = %q, want %q", got, c.want)
			}
		})
	}
	cfg := loadFull(t, lang.Options{Vars: []string{"web_count=7"}})
	if got := cfg.Variables["web_count"].Value; !got.RawEquals(cty.NumberIntVal(7)) {
		t.Errorf("web_count = %#v", got)
	}
}

func TestLoad_badVarOptions(t *testing.T) {
	_, diags := lang.Load("testdata/valid/full", testSchemas(), lang.Options{
		Env:  map[string]string{},
		Vars: []string{"versoin=1.0.0", "web_count=many", "version=1.0", "novalue"},
	})
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	want := []string{
		`Invalid -var option`,
		`Invalid value for variable "web_count"`,
		`Invalid value for variable "version"`,
		`Value for undeclared variable "versoin"`,
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	var all strings.Builder
	for _, d := range diags {
		all.WriteString(d.Summary + ": " + d.Detail + "\n")
	}
	if strings.Contains(all.String(), "s3cret") {
		t.Errorf("secret in diagnostics: %s", all.String())
	}
	if !strings.Contains(all.String(), `Did you mean "version"`) {
		t.Errorf("no suggestion: %s", all.String())
	}
}

func TestLoad_functions(t *testing.T) {
	dir := "testdata/valid/functions"
	cfg, diags := lang.Load(dir, testSchemas(), testOptions(t, dir))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	str := func(name string) string {
		v := cfg.Locals[name]
		if !v.IsKnown() {
			return "(unknown)"
		}
		if v.Type() != cty.String {
			t.Fatalf("local.%s is %s", name, v.Type().FriendlyName())
		}
		return v.AsString()
	}
	want := map[string]string{
		"rendered":  "version=2.4.0\nserver a\nserver b\n",
		"content":   "hello\n",
		"digest":    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha":       "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"home":      "/home/ops",
		"missing":   "",
		"joined":    "v2,v4,v0",
		"upper":     "2.4.0",
		"safe":      "fallback",
		"json":      `{"version":"2.4.0"}`,
		"replaced":  "2_4_0",
		"coalesced": "x",
		"when":      "(unknown)", // impure: unknown until apply
	}
	for name, w := range want {
		if got := str(name); got != w {
			t.Errorf("local.%s = %q, want %q", name, got, w)
		}
	}
	if got := lang.AfterNodes(cfg.Locals["when"]); !reflect.DeepEqual(got, []string{"apply"}) {
		t.Errorf("timestamp() marks = %v", got)
	}
	if !cfg.Locals["ok"].True() || !cfg.Locals["max"].RawEquals(cty.NumberIntVal(7)) {
		t.Errorf("ok = %#v, max = %#v", cfg.Locals["ok"], cfg.Locals["max"])
	}
	if got := cfg.Locals["lengths"]; !got.RawEquals(cty.TupleVal([]cty.Value{cty.NumberIntVal(3), cty.NumberIntVal(2), cty.NumberIntVal(1)})) {
		t.Errorf("lengths = %#v", got)
	}

	if p := cfg.Variables["service"].Value.GetAttr("port"); !p.RawEquals(cty.NumberIntVal(8080)) {
		t.Errorf("optional attribute default: port = %#v", p)
	}

	applied, diags := lang.Load(dir, testSchemas(), lang.Options{Apply: true, Env: map[string]string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if v := applied.Locals["when"]; !v.IsKnown() {
		t.Errorf("timestamp() unknown with Options.Apply")
	}
}
