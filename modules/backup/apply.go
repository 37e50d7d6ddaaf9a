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

	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

func (b *Backup) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	s, ds := decodeBackup(req.Config)
	if ds.HasErrors() {
		return nil, diags.Err(ds)
	}
	run, name := req.Env.RunID(), nodeName(req.Node)
	m := &Manifest{
		Format: manifestFormat, ID: run + "/" + name, Run: run, Name: name,
		Host: s.host, Sudo: s.sudo, Paths: s.paths, Exclude: s.exclude,
		Version: b.Version,
	}
	var job takeJob
	if s.database != "" {
		db, err := req.Env.Database(s.database)
		if err != nil {
			return nil, err
		}
		conn, err := parseDB(db)
		if err != nil {
			return nil, err
		}
		r, err := dbRunner(req.Env, db, true)
		if err != nil {
			return nil, err
		}
		est, err := b.estimateDB(ctx, req, db, true)
		if err != nil {
			fmt.Fprintf(req.Log, "size of database %s unknown (%v); going on\n", db.Name, err)
		}
		c := conn.dump()
		m.Kind, m.Database, m.Driver, m.Archive = KindDatabase, db.Name, db.Driver, dbArchive
		job = takeJob{runner: r, estimate: est, cmd: modules.Command{
			Cmd: c.script, Stdin: strings.NewReader(c.stdinPrefix()), Timeout: s.timeout,
		}, what: fmt.Sprintf("%s of database %s", dumpTool(db.Driver), db.Name)}
	} else {
		t, err := req.Env.Target(s.host)
		if err != nil {
			return nil, err
		}
		r := hostRunner{name: s.host, r: t, t: t}
		links, notes, err := resolve(ctx, r, s)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			fmt.Fprintf(req.Log, "backup %s: %s\n", m.ID, n)
		}
		l := layoutOf(s.paths, links)
		est, err := estimateHost(ctx, r, s, l)
		if err != nil {
			return nil, err
		}
		m.Kind, m.Archive, m.Links = KindHost, hostArchive, links
		// An (empty) Stdin gives the stream an SSH session of its own
		// instead of the host's shared shell.
		job = takeJob{runner: r, estimate: est, cmd: modules.Command{
			Cmd: createScript(l.members(), s.exclude, links), Sudo: s.sudo, Timeout: s.timeout, Stdin: strings.NewReader(""),
		}, what: "tar of " + strings.Join(l.members(), ", ")}
	}
	dir := Dir(req.Env.StateDir(), run, name)
	if err := take(ctx, dir, m, job, req.Log, req.Env.Progress); err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	fmt.Fprintf(req.Log, "backup %s: %s, %d entries, %s -> %s compressed, sha256 %s, verified\n",
		m.ID, sourceText(m), m.Files, modules.HumanBytes(m.Bytes), modules.HumanBytes(m.ArchiveBytes), m.SHA256[:16])
	pruned, err := Prune(req.Env.StateDir(), name, run, req.Env.ProtectedRun(), s.keep)
	for _, id := range pruned {
		fmt.Fprintf(req.Log, "pruned backup %s (keep_runs = %d)\n", id, s.keep)
	}
	if err != nil {
		// The backup itself is good; a pruning problem must not fail it.
		fmt.Fprintf(req.Log, "pruning old backups of %s: %v\n", name, err)
	}
	out := planOutputs(name, s)
	out["id"] = cty.StringVal(m.ID)
	out["archive"] = cty.StringVal(filepath.Join(dir, m.Archive))
	out["sha256"] = cty.StringVal(m.SHA256)
	out["bytes"] = cty.NumberIntVal(m.Bytes)
	return &modules.Outcome{
		Changed: true,
		Message: fmt.Sprintf("%s: %s (%s compressed), verified", sourceText(m), modules.HumanBytes(m.Bytes), modules.HumanBytes(m.ArchiveBytes)),
		Outputs: out,
	}, nil
}

func sourceText(m *Manifest) string {
	if m.Kind == KindDatabase {
		return "database " + m.Database
	}
	return "host " + m.Host + " " + strings.Join(m.Paths, ", ")
}

// takeJob is the command whose stdout becomes the archive.
type takeJob struct {
	runner   runner
	cmd      modules.Command
	estimate int64 // uncompressed bytes; < 0 unknown
	what     string
}

// take streams job's output into dir/m.Archive: into a temporary file,
// then reads it back in full (sha256, decompression, tar or dump shape),
// renames it into place and writes the manifest last. On any failure the
// temporary file is removed and no manifest exists.
func take(ctx context.Context, dir string, m *Manifest, job takeJob, log io.Writer, progress func(done, total int64)) error {
	if err := checkSpace(filepath.Dir(filepath.Dir(dir)), job.estimate); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A backup taken again (a resumed run) replaces the old one: the
	// manifest goes first, so there is never a manifest for a wrong archive.
	for _, f := range []string{manifestName, hostArchive, dbArchive, hostArchive + tmpSuffix, dbArchive + tmpSuffix} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	start := time.Now()
	tmp := filepath.Join(dir, m.Archive+tmpSuffix)
	aw, err := newArchiveWriter(tmp, func(n int64) { progress(n, job.estimate) })
	if err != nil {
		return err
	}
	done := false
	// Read the file back while it is written: the verification then costs
	// little wall time on top of the transfer.
	fl, err := aw.follow(ctx)
	if err != nil {
		aw.abort()
		return err
	}
	defer fl.Close()
	type verified struct {
		st  Stats
		err error
	}
	verc := make(chan verified, 1)
	go func() {
		o := readOptions{kind: m.Kind, driver: m.Driver}
		if m.Kind == KindHost {
			o.rules = newEntryRules(m.layout()) // a host that was taken over sends what it likes
		}
		st, err := readFrom(fl, tmp, o)
		verc <- verified{st, err}
	}()
	defer func() {
		if !done {
			aw.abort()
			<-verc
		}
	}()
	cmd := job.cmd
	cmd.Stdout = aw
	res, err := job.runner.run(ctx, cmd)
	if err != nil {
		return fmt.Errorf("streaming the %s: %w", job.what, err)
	}
	if err := aw.failed(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: %w", job.runner.where(), scriptFailure(job.what, res.ExitCode, res.Stderr))
	}
	if w := strings.TrimSpace(string(res.Stderr)); w != "" && log != nil {
		fmt.Fprintf(log, "%s: %s\n", job.runner.where(), w)
	}
	sum, err := aw.finish()
	done = true
	v := <-verc
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	st, err := v.st, v.err
	if err == nil && st.CRC32C != sum {
		err = fmt.Errorf("read back %s: CRC-32C %s, written %s", tmp, st.CRC32C, sum)
	}
	if err == nil && st.Bytes != aw.n {
		err = fmt.Errorf("read back %s: %d bytes, written %d", tmp, st.Bytes, aw.n)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("verification failed: %w", err)
	}
	final := filepath.Join(dir, m.Archive)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	m.Files, m.Bytes, m.ArchiveBytes, m.SHA256 = st.Files, st.Bytes, st.ArchiveBytes, st.SHA256
	m.CreatedAt = time.Now().UTC()
	m.Seconds = time.Since(start).Seconds()
	return writeManifest(dir, m)
}
