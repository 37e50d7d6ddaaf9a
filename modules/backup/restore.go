package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// Restore is the `restore` action: it puts a backup taken by a `backup`
// node back, in a step or a rollback block.
type Restore struct{}

var (
	_ modules.Action        = (*Restore)(nil)
	_ modules.Validator     = (*Restore)(nil)
	_ modules.Repeatable    = (*Restore)(nil)
	_ modules.Describer     = (*Restore)(nil)
	_ modules.UndoDescriber = (*Restore)(nil)
	_ modules.Hostless      = (*Restore)(nil)
)

func (*Restore) Kind() string { return "restore" }

// Describe: the offline plan shows these arguments.
func (*Restore) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"backup", "paths"}}
}

// UndoText is what the plan says undoes it without a rollback block.
func (*Restore) UndoText() string { return "none" }

// Hostless: a restore acts where its backup was taken, so a module
// node's rollback block (which has no host) may hold it.
func (*Restore) Hostless() bool { return true }

func (*Restore) Spec() hcldec.Spec {
	return hcldec.ObjectSpec{
		"backup":  &hcldec.AttrSpec{Name: "backup", Type: cty.DynamicPseudoType, Required: true},
		"paths":   &hcldec.AttrSpec{Name: "paths", Type: cty.List(cty.String)},
		"to":      &hcldec.AttrSpec{Name: "to", Type: cty.DynamicPseudoType},
		"sudo":    &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
		"timeout": &hcldec.AttrSpec{Name: "timeout", Type: cty.String},
	}
}

// Safe: a restore makes the paths equal to the backup, so repeating it is harmless.
func (*Restore) Safe(*modules.Config) bool { return true }

// restoreSettings is a restore block, decoded and checked.
type restoreSettings struct {
	id, name string // id known once the backup ran; name always
	paths    []string
	to       string
	sudo     *bool // nil: as the backup was taken
	timeout  time.Duration
}

func (*Restore) Validate(cfg *modules.Config) hcl.Diagnostics {
	_, d := decodeRestore(cfg)
	return d
}

func decodeRestore(cfg *modules.Config) (restoreSettings, hcl.Diagnostics) {
	var s restoreSettings
	var ds hcl.Diagnostics
	v := cfg.Value
	bv := modules.Get(v, "backup")
	if _, written := cfg.Ranges["backup"]; written && bv.IsNull() {
		ds = append(ds, diags.At(*cfg.Range("backup"), "backup must be a backup reference",
			"Write backup = backup.NAME, naming a backup block of this configuration."))
	}
	if bv.IsKnown() && !bv.IsNull() {
		ty := bv.Type()
		if !ty.IsObjectType() || !ty.HasAttribute("name") || (ty.HasAttribute("kind") && modules.GetString(bv, "kind") != "" && modules.GetString(bv, "kind") != "backup") {
			ds = append(ds, diags.At(*cfg.Range("backup"), "backup must be a backup reference",
				"Write backup = backup.NAME, naming a backup block of this configuration."))
		} else {
			s.id, s.name = modules.GetString(bv, "id"), modules.RefName(bv)
		}
	}
	if pv := modules.Get(v, "paths"); !pv.IsNull() && pv.IsWhollyKnown() {
		var d hcl.Diagnostics
		s.paths, d = checkPaths(cfg, "paths", modules.GetStrings(v, "paths"), nil)
		ds = append(ds, d...)
		if len(s.paths) == 0 && !d.HasErrors() {
			ds = append(ds, diags.At(*cfg.Range("paths"), "paths is empty", "Leave paths out to restore everything the backup holds."))
		}
	}
	if tv := modules.Get(v, "to"); !tv.IsNull() {
		name, d := refName(cfg, "to", tv, "host", "host.standby")
		ds = append(ds, d...)
		s.to = name
	}
	if sv := modules.Get(v, "sudo"); !sv.IsNull() && sv.IsKnown() {
		b := sv.True()
		s.sudo = &b
	}
	var d hcl.Diagnostics
	s.timeout, d = decodeTimeout(cfg)
	return s, append(ds, d...)
}

// backupDir finds the backup a restore names: by id once known, else by
// name within the current run.
func (s restoreSettings) backupDir(env modules.Env) (dir, id string, err error) {
	if s.id != "" {
		dir, err = IDDir(env.StateDir(), s.id)
		return dir, s.id, err
	}
	if s.name == "" {
		return "", "", errors.New("restore: the backup to restore is not known")
	}
	run := env.RunID()
	if run == "" { // plan: the run has no id yet
		return "", "RUN/" + s.name, nil
	}
	return Dir(env.StateDir(), run, s.name), run + "/" + s.name, nil
}

func (r *Restore) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	s, ds := decodeRestore(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	dir, id, err := s.backupDir(req.Env)
	if err != nil {
		return nil, err
	}
	bv := modules.Get(req.Config.Value, "backup")
	// What the backup covers: its manifest when it exists already, else
	// what the backup block says (its plan-time outputs).
	kind, host, db, paths := "", modules.GetString(bv, "host"), modules.GetString(bv, "database"), modules.GetStrings(bv, "paths")
	taken := "taken earlier in this run"
	var links []Link
	if m, err := ReadManifest(dir); err == nil {
		kind, host, db, paths, links = m.Kind, m.Host, m.Database, m.Paths, m.Links
		taken = "taken " + m.CreatedAt.Local().Format(time.DateTime)
	}
	if kind == "" && db != "" {
		kind = KindDatabase
	} else if kind == "" && (host != "" || len(paths) > 0) {
		kind = KindHost
	}
	p := &modules.Plan{Change: modules.Update, Undo: "none"}
	if kind == KindDatabase {
		if s.to != "" || len(s.paths) > 0 {
			return nil, diags.Err(hcl.Diagnostics{diags.At(*req.Config.Range("backup"),
				"to and paths apply to host backups only", "backup "+id+" is a backup of database "+db+".")})
		}
		p.Summary = fmt.Sprintf("database %s <- backup %s (%s): the objects in the dump are dropped and recreated", db, id, taken)
		return p, nil
	}
	if s.to != "" {
		host = s.to
	}
	if len(s.paths) > 0 {
		if len(paths) > 0 {
			if _, d := checkPaths(req.Config, "paths", s.paths, paths); d.HasErrors() {
				return nil, diags.Err(d)
			}
		}
		paths = s.paths
	}
	onto, what := "host "+host, strings.Join(paths, ", ")
	if host == "" {
		onto = "the backup's host"
	}
	if what == "" {
		what = "the backed-up paths"
	}
	p.Summary = fmt.Sprintf("%s <- backup %s (%s): replaces %s", onto, id, taken, what)
	if host == "" || len(paths) == 0 {
		return p, nil
	}
	rd, err := req.Env.Reader(host)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, pth := range paths {
		fi, err := rd.Stat(ctx, pth)
		if err != nil {
			return nil, modules.OnHost(host, err)
		}
		l := mapPaths([]string{pth}, links)
		switch {
		case len(l.links) > 0:
			lines = append(lines, fmt.Sprintf("~ %s (the link, to %s again, and what it points to)", pth, l.trees[0]))
		case l.trees[0] != pth:
			lines = append(lines, fmt.Sprintf("~ %s (as %s, where it resolved when backed up)", pth, l.trees[0]))
		case fi.Exists:
			lines = append(lines, "~ "+pth+" (replaced by the backup's content)")
		default:
			lines = append(lines, "+ "+pth+" (missing now, restored)")
		}
	}
	p.Detail = strings.Join(lines, "\n")
	return p, nil
}

func (r *Restore) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	s, ds := decodeRestore(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	dir, id, err := s.backupDir(req.Env)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("restore: backup %s is incomplete or was never taken (no manifest in %s)", id, dir)
	}
	if err != nil {
		return nil, err
	}
	o := RestoreOptions{Paths: s.paths, Sudo: s.sudo, Timeout: s.timeout, Log: req.Log, Progress: req.Env.Progress}
	if m.Kind == KindDatabase {
		if s.to != "" || len(s.paths) > 0 {
			return nil, fmt.Errorf("restore: backup %s is of database %s: to and paths apply to host backups only", id, m.Database)
		}
		if o.Database, err = req.Env.Database(m.Database); err != nil {
			return nil, err
		}
		if o.Database.Host != "" {
			if o.DBTarget, err = req.Env.Target(o.Database.Host); err != nil {
				return nil, err
			}
		}
	} else {
		o.Host = m.Host
		if s.to != "" {
			o.Host = s.to
		}
		if o.Target, err = req.Env.Target(o.Host); err != nil {
			return nil, err
		}
	}
	if err := RestoreDir(ctx, dir, o); err != nil {
		return nil, err
	}
	msg := "restored " + id + " to database " + m.Database
	if m.Kind == KindHost {
		ps := m.Paths
		if len(s.paths) > 0 {
			ps = s.paths
		}
		msg = fmt.Sprintf("restored %s onto host %s: %s", id, o.Host, strings.Join(ps, ", "))
	}
	return &modules.Outcome{Changed: true, Message: msg}, nil
}

// RestoreOptions say where a backup goes.
type RestoreOptions struct {
	// Host backups: the host to restore onto and its name.
	Target modules.Target
	Host   string
	// Paths restores only these (each inside a backed-up path); nil: all.
	Paths []string
	// Sudo runs the host's commands through sudo; nil: as the backup was taken.
	Sudo *bool
	// Database backups: the database, and its host's Target (nil: the
	// client tools run on the controller).
	Database *modules.Database
	DBTarget modules.Target

	Timeout  time.Duration // 0: 6h
	Log      io.Writer     // may be nil
	Progress func(done, total int64)
}

// RestoreDir verifies the backup in dir against its manifest (sha256 and
// a full decompression) before anything is changed, then restores it: host
// paths are made exactly as in the backup (what is there now is removed,
// except what exclude patterns kept out of the backup), a database gets
// pg_restore --clean or the mysql client.
func RestoreDir(ctx context.Context, dir string, o RestoreOptions) error {
	m, err := ReadManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup in %s is incomplete: no manifest", dir)
	}
	if err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var r runner
	var cmd modules.Command
	var prefix string
	switch m.Kind {
	case KindHost:
		if o.Target == nil {
			return fmt.Errorf("backup %s: no host to restore onto", m.ID)
		}
		r = hostRunner{name: o.Host, r: o.Target, t: o.Target}
		if err := m.checkPaths(); err != nil {
			return err
		}
		l := m.layout()
		if len(o.Paths) > 0 {
			fake := &modules.Config{Ranges: map[string]hcl.Range{}}
			ps, d := checkPaths(fake, "paths", o.Paths, m.Paths)
			if d.HasErrors() {
				return fmt.Errorf("backup %s: %s", m.ID, d[0].Summary)
			}
			l = mapPaths(ps, m.Links)
		}
		sudo := m.Sudo
		if o.Sudo != nil {
			sudo = *o.Sudo
		}
		cmd = modules.Command{Cmd: restoreScript(l.members(), m.Exclude), Sudo: sudo, Timeout: o.Timeout}
		// Verify first, and check that every path asked for is in the
		// archive: tar would only say so after the old files are gone.
		var members []string
		found := map[string]bool{}
		want := map[string]bool{}
		for _, p := range l.members() {
			members = append(members, member(p))
			want[member(p)] = true
		}
		if _, err := verifyAgainst(ctx, dir, m, readOptions{member: func(name string) {
			if n := strings.TrimSuffix(name, "/"); want[n] {
				found[n] = true
			}
		}}); err != nil {
			return fmt.Errorf("%w; nothing was restored", err)
		}
		for _, mb := range members {
			if !found[mb] {
				return fmt.Errorf("backup %s holds no %s; nothing was restored", m.ID, strings.TrimPrefix(mb, "."))
			}
		}
	case KindDatabase:
		if o.Database == nil {
			return fmt.Errorf("backup %s: no database to restore into", m.ID)
		}
		if o.Database.Driver != m.Driver {
			return fmt.Errorf("backup %s is a %s dump; database %s is %s", m.ID, m.Driver, o.Database.Name, o.Database.Driver)
		}
		conn, err := parseDB(o.Database)
		if err != nil {
			return err
		}
		r = localRunner{}
		if o.DBTarget != nil {
			r = hostRunner{name: o.Database.Host, r: o.DBTarget, t: o.DBTarget}
		}
		c := conn.restore()
		cmd, prefix = modules.Command{Cmd: c.script, Timeout: o.Timeout}, c.stdinPrefix()
		if _, err := verifyAgainst(ctx, dir, m, readOptions{}); err != nil {
			return fmt.Errorf("%w; nothing was restored", err)
		}
	default:
		return fmt.Errorf("backup %s: unknown kind %q in its manifest", m.ID, m.Kind)
	}

	// Stream the archive, decompressed, into the command's stdin. It is
	// hashed again on the way, so a change since the check above is caught.
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	streamErr := make(chan error, 1)
	go func() {
		err := func() error {
			if _, err := io.WriteString(pw, prefix); err != nil {
				return err
			}
			pg := &progressWriter{total: m.Bytes, report: o.Progress}
			st, err := readArchive(ctx, filepath.Join(dir, m.Archive), readOptions{kind: m.Kind, driver: m.Driver, out: io.MultiWriter(pw, pg)})
			if err == nil && st.SHA256 != m.SHA256 {
				err = fmt.Errorf("backup %s changed while it was restored (sha256 %s)", m.ID, st.SHA256)
			}
			return err
		}()
		pw.CloseWithError(err)
		streamErr <- err
	}()
	res, err := r.run(ctx, cmd)
	pr.CloseWithError(errCommandEnded)
	serr := <-streamErr
	if errors.Is(serr, errCommandEnded) && err == nil && res.ExitCode == 0 {
		serr = nil // it had read all it needed (tar stops at its end blocks)
	}
	// Past the checks the target may be half restored: say so, and that a
	// restore can simply be run again.
	partly := "; the target may be partly restored: run the restore again once the cause is fixed"
	if m.Driver == "postgres" {
		partly = "; pg_restore ran as one transaction, so the database is as it was"
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w%s", m.ID, err, partly)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("restore of %s: %s: %w%s", m.ID, r.where(), scriptFailure("restore", res.ExitCode, res.Stderr), partly)
	}
	if serr != nil {
		return fmt.Errorf("restore of %s: %w%s", m.ID, serr, partly)
	}
	if w := strings.TrimSpace(string(res.Stderr)); w != "" {
		fmt.Fprintf(o.Log, "%s: %s\n", r.where(), w)
	}
	return nil
}

var errCommandEnded = errors.New("the restore command ended before reading all of the archive")

// progressWriter reports restored (uncompressed) bytes.
type progressWriter struct {
	done, total, next int64
	report            func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.report != nil && (p.done >= p.next || p.done == p.total) {
		p.report(p.done, p.total)
		p.next = p.done + 4<<20
	}
	return len(b), nil
}
