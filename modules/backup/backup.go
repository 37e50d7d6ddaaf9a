// Package backup owns the `backup` node kind, the `restore` action kind and
// the on-disk backup store under STATE/backups/RUN/NAME/: the archive
// (zstd-compressed tar of host paths, or a database dump), its manifest,
// verification, listing and pruning.
//
// It imports only modules, lang/diags and libraries; never the executor.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// Backup is the `backup` node kind.
type Backup struct {
	// Version is the upgrader version written into every manifest.
	Version string
}

var (
	_ modules.Node       = (*Backup)(nil)
	_ modules.Protects   = (*Backup)(nil)
	_ modules.Validator  = (*Backup)(nil)
	_ modules.Repeatable = (*Backup)(nil)
	_ modules.Describer  = (*Backup)(nil)
)

const (
	defaultKeepRuns = 10
	defaultTimeout  = 6 * time.Hour
)

func (*Backup) Kind() string { return "backup" }

// Describe: the offline plan shows these arguments; it only reads.
func (*Backup) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"database", "host", "paths"}, Change: modules.Read}
}

func (*Backup) Spec() hcldec.Spec {
	return hcldec.ObjectSpec{
		"host":      &hcldec.AttrSpec{Name: "host", Type: cty.DynamicPseudoType},
		"paths":     &hcldec.AttrSpec{Name: "paths", Type: cty.List(cty.String)},
		"exclude":   &hcldec.AttrSpec{Name: "exclude", Type: cty.List(cty.String)},
		"database":  &hcldec.AttrSpec{Name: "database", Type: cty.DynamicPseudoType},
		"sudo":      &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
		"keep_runs": &hcldec.AttrSpec{Name: "keep_runs", Type: cty.Number},
		"timeout":   &hcldec.AttrSpec{Name: "timeout", Type: cty.String},
	}
}

// Outputs: bytes is the uncompressed size; archive the archive's path.
// host, database and paths are known at plan time already.
func (*Backup) Outputs() map[string]cty.Type {
	return map[string]cty.Type{
		"id":       cty.String,
		"name":     cty.String,
		"host":     cty.String,
		"database": cty.String,
		"paths":    cty.List(cty.String),
		"archive":  cty.String,
		"sha256":   cty.String,
		"bytes":    cty.Number,
	}
}

// Protects says what a completed backup covers, for the interlock.
func (*Backup) Protects(cfg *modules.Config) (hosts, databases []string) {
	if h := modules.RefName(modules.Get(cfg.Value, "host")); h != "" {
		hosts = append(hosts, h)
	}
	if d := modules.RefName(modules.Get(cfg.Value, "database")); d != "" {
		databases = append(databases, d)
	}
	return hosts, databases
}

// Safe: a backup cut by a crash is simply taken again.
func (*Backup) Safe(*modules.Config) bool { return true }

// settings is a backup block, decoded and checked.
type settings struct {
	host     string
	paths    []string
	exclude  []string
	database string
	sudo     bool
	keep     int
	timeout  time.Duration
}

func (*Backup) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, d := decodeBackup(cfg)
	return d
}

// decodeBackup checks a backup body. Unknown values (known after another
// node) are skipped.
func decodeBackup(cfg *modules.Config) (settings, hcl.Diagnostics) {
	var s settings
	var ds hcl.Diagnostics
	v := cfg.Value
	hostV, dbV := modules.Get(v, "host"), modules.Get(v, "database")
	hasHost, hasDB := !hostV.IsNull(), !dbV.IsNull()
	switch {
	case hasHost && hasDB:
		ds = append(ds, diags.At(*cfg.Range("database"), "backup takes host or database, not both",
			"A backup block copies either paths of a host (host, paths, exclude) or one database (database). Write two backup blocks to do both."))
	case !hasHost && !hasDB:
		ds = append(ds, diags.At(cfg.DeclRange, "backup needs host and paths, or database",
			"Example: host = host.web with paths = [\"/opt/app\"], or database = database.prod."))
	}
	if hasHost {
		name, d := refName(cfg, "host", hostV, "host", "host.web")
		ds = append(ds, d...)
		s.host = name
		if modules.Get(v, "paths").IsNull() {
			ds = append(ds, diags.At(cfg.DeclRange, "backup of a host needs paths",
				"List the absolute paths to back up, e.g. paths = [\"/opt/app\", \"/etc/app\"]."))
		}
	}
	if hasDB {
		name, d := refName(cfg, "database", dbV, "database", "database.prod")
		ds = append(ds, d...)
		s.database = name
	}
	if hasDB && !hasHost {
		for _, a := range []string{"paths", "exclude", "sudo"} {
			if !modules.Get(v, a).IsNull() {
				ds = append(ds, diags.At(*cfg.Range(a), a+" applies to host backups only",
					"A database backup is a dump of the whole database (pg_dump or mysqldump)."))
			}
		}
	}
	if pv := modules.Get(v, "paths"); !pv.IsNull() && pv.IsWhollyKnown() && hasHost {
		paths, d := checkPaths(cfg, "paths", modules.GetStrings(v, "paths"), nil)
		ds = append(ds, d...)
		s.paths = paths
		if len(paths) == 0 && !d.HasErrors() {
			ds = append(ds, diags.At(*cfg.Range("paths"), "paths is empty", "List at least one absolute path to back up."))
		}
	}
	for _, p := range modules.GetStrings(v, "exclude") {
		if strings.TrimSpace(p) == "" {
			ds = append(ds, diags.At(*cfg.Range("exclude"), "empty exclude pattern",
				"An exclude pattern is a glob on the base name (\"*.tmp\") or, with a slash, on the absolute path (\"/opt/app/cache\")."))
			continue
		}
		s.exclude = append(s.exclude, p)
	}
	s.sudo = modules.GetBool(v, "sudo", false)
	s.keep = defaultKeepRuns
	if kv := modules.Get(v, "keep_runs"); !kv.IsNull() && kv.IsKnown() {
		bf := kv.AsBigFloat()
		k, acc := bf.Int64()
		if !bf.IsInt() || acc != 0 || k < 1 || k > 1_000_000 {
			ds = append(ds, diags.At(*cfg.Range("keep_runs"), "keep_runs must be a whole number of runs, at least 1",
				"keep_runs is how many runs' backups of this name are kept; older ones are pruned after a successful backup."))
		} else {
			s.keep = int(k)
		}
	}
	var d hcl.Diagnostics
	s.timeout, d = decodeTimeout(cfg)
	return s, append(ds, d...)
}

// decodeTimeout reads the timeout attribute (default 6h).
func decodeTimeout(cfg *modules.Config) (time.Duration, hcl.Diagnostics) {
	if tv := modules.Get(cfg.Value, "timeout"); tv.IsNull() || !tv.IsKnown() {
		return defaultTimeout, nil
	}
	d, err := modules.GetDuration(cfg.Value, "timeout", defaultTimeout)
	if err == nil && d <= 0 {
		err = errors.New("timeout must be positive")
	}
	if err != nil {
		return defaultTimeout, hcl.Diagnostics{diags.At(*cfg.Range("timeout"), "invalid timeout", err.Error())}
	}
	return d, nil
}

// refName checks that v is a reference object of the given kind (host.X,
// database.X) and returns its name ("" when unknown).
func refName(cfg *modules.Config, attr string, v cty.Value, kind, example string) (string, hcl.Diagnostics) {
	if !v.IsKnown() {
		return "", nil
	}
	bad := func() hcl.Diagnostics {
		return hcl.Diagnostics{diags.At(*cfg.Range(attr), attr+" must be a "+kind+" reference",
			fmt.Sprintf("Write a reference such as %s, not a string or another kind of object.", example))}
	}
	if !v.Type().IsObjectType() || !v.Type().HasAttribute("name") {
		return "", bad()
	}
	// Hosts have an address, databases a driver, graph nodes a kind.
	other := map[string]string{"host": "driver", "database": "address"}[kind]
	if v.Type().HasAttribute(other) || v.Type().HasAttribute("kind") {
		return "", bad()
	}
	return modules.RefName(v), nil
}

// checkPaths checks absolute paths: clean, not "/", no duplicates, none
// inside another (the archive would hold it twice). within, when given,
// are the paths each one must lie under (a restore's subset).
func checkPaths(cfg *modules.Config, attr string, paths, within []string) ([]string, hcl.Diagnostics) {
	var ds hcl.Diagnostics
	var out []string
	rng := *cfg.Range(attr)
	for _, p := range paths {
		switch {
		case !strings.HasPrefix(p, "/"):
			ds = append(ds, diags.At(rng, fmt.Sprintf("path %q is not absolute", p), "Paths on a host are absolute, like /opt/app."))
			continue
		case strings.ContainsRune(p, 0):
			ds = append(ds, diags.At(rng, "path contains a NUL byte", ""))
			continue
		case hasDotDot(p):
			ds = append(ds, diags.At(rng, fmt.Sprintf("path %q contains \"..\"", p), "Write the path without .. components."))
			continue
		}
		c := path.Clean(p)
		if c == "/" {
			ds = append(ds, diags.At(rng, "refusing to back up or restore / as a whole",
				"A restore replaces the paths it covers; list the directories that matter instead (/opt/app, /etc/app)."))
			continue
		}
		out = append(out, c)
	}
	for i, a := range out {
		for j, b := range out {
			if i == j {
				continue
			}
			if a == b && i < j {
				ds = append(ds, diags.At(rng, fmt.Sprintf("path %q is listed twice", a), ""))
			}
			if under(a, b) && a != b {
				ds = append(ds, diags.At(rng, fmt.Sprintf("path %q lies inside %q", a, b), "List only the outer path: it covers everything inside."))
			}
		}
	}
	if within != nil {
		for _, p := range out {
			ok := false
			for _, w := range within {
				ok = ok || under(p, w)
			}
			if !ok {
				ds = append(ds, diags.At(rng, fmt.Sprintf("path %q is not in the backup", p),
					"The backup covers: "+strings.Join(within, ", ")))
			}
		}
	}
	return out, ds
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// under reports whether p is dir or lies inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// nodeName is NAME of "backup.NAME".
func nodeName(addr string) string {
	if i := strings.LastIndexByte(addr, '.'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

func (b *Backup) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	s, ds := decodeBackup(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	name := nodeName(req.Node)
	p := &modules.Plan{
		Change:  modules.Read,
		Undo:    "none: the archive stays in the state directory",
		Outputs: planOutputs(name, s),
	}
	dest := filepath.Join(backupsDir, "RUN", name)
	if s.database != "" {
		db, err := req.Env.Database(s.database)
		if err != nil {
			return nil, err
		}
		est, err := b.estimateDB(ctx, req, db, false)
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("size of database %q unknown: %v", db.Name, err))
		} else if err := checkSpace(req.Env.StateDir(), est); err != nil {
			return nil, err
		}
		p.Summary = fmt.Sprintf("database %s (%s%s) -> %s", db.Name, dumpTool(db.Driver), where(db), dest)
		p.Detail = "size: " + modules.HumanBytes(est)
		return p, nil
	}
	if pv := modules.Get(req.Config.Value, "paths"); !pv.IsWhollyKnown() || s.host == "" {
		// Paths (or the host) come from another node's outputs: measured at apply.
		delete(p.Outputs, "paths")
		p.Summary = fmt.Sprintf("host %s: paths known at apply -> %s", s.host, dest)
		return p, nil
	}
	r, err := req.Env.Reader(s.host)
	if err != nil {
		return nil, err
	}
	hr := hostRunner{name: s.host, r: r}
	links, notes, err := resolve(ctx, hr, s)
	if err != nil {
		return nil, err
	}
	l := layoutOf(s.paths, links)
	est, err := estimateHost(ctx, hr, s, l)
	if err != nil {
		return nil, err
	}
	if err := checkSpace(req.Env.StateDir(), est); err != nil {
		return nil, err
	}
	more, err := outsideLinks(ctx, hr, s, l)
	if err != nil {
		return nil, err
	}
	p.Warnings = append(append(p.Warnings, notes...), more...)
	p.Summary = fmt.Sprintf("host %s: %s (%s) -> %s", s.host, strings.Join(s.paths, ", "), modules.HumanBytes(est), dest)
	var detail []string
	if len(links) > 0 {
		detail = append(detail, linkText(links))
	}
	if len(s.exclude) > 0 {
		detail = append(detail, "exclude: "+strings.Join(s.exclude, ", "))
	}
	p.Detail = strings.Join(detail, "\n")
	return p, nil
}

func planOutputs(name string, s settings) map[string]cty.Value {
	out := map[string]cty.Value{
		"name":     cty.StringVal(name),
		"host":     cty.StringVal(s.host),
		"database": cty.StringVal(s.database),
		"paths":    cty.ListValEmpty(cty.String),
	}
	if len(s.paths) > 0 {
		var ps []cty.Value
		for _, p := range s.paths {
			ps = append(ps, cty.StringVal(p))
		}
		out["paths"] = cty.ListVal(ps)
	}
	return out
}

func dumpTool(driver string) string {
	if driver == "mysql" {
		return "mysqldump"
	}
	return "pg_dump"
}

func where(db *modules.Database) string {
	if db.Host == "" {
		return " on the controller"
	}
	return " on host " + db.Host
}

// estimateHost runs du on what the backup archives (the layout's members);
// a missing path is an error that names it.
func estimateHost(ctx context.Context, r runner, s settings, l layout) (int64, error) {
	res, err := r.probe(ctx, modules.Command{Cmd: sizeScript(l.members()), Sudo: s.sudo, Timeout: 10 * time.Minute})
	if err != nil {
		return 0, err
	}
	if res.ExitCode != 0 {
		err := fmt.Errorf("%s: cannot measure the paths to back up: %w", r.where(), scriptFailure("du", res.ExitCode, res.Stderr))
		if !s.sudo && strings.Contains(string(res.Stderr), "Permission denied") {
			err = fmt.Errorf("%w (set sudo = true in the backup block to read them as root)", err)
		}
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: du printed no total", r.where())
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: du printed %q", r.where(), lines[len(lines)-1])
	}
	return n, nil
}

// estimateDB asks the database for its size; -1 and an error when it cannot.
func (b *Backup) estimateDB(ctx context.Context, req *modules.Request, db *modules.Database, apply bool) (int64, error) {
	conn, err := parseDB(db)
	if err != nil {
		return -1, err
	}
	r, err := dbRunner(req.Env, db, apply)
	if err != nil {
		return -1, err
	}
	c := conn.size()
	res, err := r.probe(ctx, modules.Command{Cmd: c.script, Stdin: strings.NewReader(c.stdinPrefix()), Timeout: time.Minute})
	if err != nil {
		return -1, err
	}
	if res.ExitCode != 0 {
		return -1, scriptFailure("size query", res.ExitCode, res.Stderr)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(res.Stdout)), 10, 64)
	if err != nil {
		return -1, fmt.Errorf("size query printed %q", strings.TrimSpace(string(res.Stdout)))
	}
	return n, nil
}

// dbRunner is where a database's client tools run: its host, or here.
func dbRunner(env modules.Env, db *modules.Database, apply bool) (runner, error) {
	if db.Host == "" {
		return localRunner{}, nil
	}
	r, err := env.Reader(db.Host)
	if err != nil {
		return nil, err
	}
	h := hostRunner{name: db.Host, r: r}
	if apply {
		if h.t, err = env.Target(db.Host); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// freeSpace reports the bytes available at dir or its nearest existing parent.
var freeSpace = func(dir string) (int64, error) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, os.ErrNotExist) || parent == dir {
			return 0, err
		}
		dir = parent
	}
}

// checkSpace refuses a backup whose uncompressed size does not fit on the
// controller. The uncompressed size bounds the archive from above.
func checkSpace(stateDir string, need int64) error {
	if need < 0 {
		return nil
	}
	free, err := freeSpace(stateDir)
	if err != nil {
		return fmt.Errorf("free space in %s: %w", stateDir, err)
	}
	if free < need {
		return fmt.Errorf("not enough space for the backup in %s: %s free, the backup needs up to %s; free some space or prune old backups (upgrader backups list)",
			stateDir, modules.HumanBytes(free), modules.HumanBytes(need))
	}
	return nil
}
