// Package putfile is the file core shared by the upload and template
// actions: plan a set of files against a host from sha256, write them
// atomically (as root without following planted names), keep the previous
// content beside each and undo to it. It imports only modules and lang/diags.
package putfile

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// File is one file to put on a host; template builds these from rendered
// text, upload from local files.
type File struct {
	Dest   string // absolute path on the host
	Size   int64
	SHA256 string // hex; "" until Sum computes it (see Hash)
	// Hash computes SHA256 when it is needed: only to compare with a file
	// that exists on the host, so a new 1 GiB artifact is not read twice.
	Hash func() (string, error)
	Mode os.FileMode
	Open func() (io.ReadCloser, error)
	// Text is the content when it is small text known in memory (template),
	// nil otherwise; used for the plan's diff.
	Text []byte
}

// Sum returns the file's sha256, computing it on first use.
func (f *File) Sum() (string, error) {
	if f.SHA256 == "" && f.Hash != nil {
		sum, err := f.Hash()
		if err != nil {
			return "", err
		}
		f.SHA256 = sum
	}
	return f.SHA256, nil
}

// BytesFile is a File holding data in memory.
func BytesFile(dest string, data []byte, mode os.FileMode) File {
	sum := sha256.Sum256(data)
	return File{Dest: dest, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Mode: mode, Text: data,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// Options are the arguments shared by upload and template.
type Options struct {
	Mode         os.FileMode // 0: keep the remote file's mode, else File.Mode
	Owner, Group string      // "" leaves it; need Sudo
	Sudo         bool
}

// FileState is what Undo needs for one file, recorded before it changes.
type FileState struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	// Prev is the copy of the previous content beside Path
	// (PATH.upgrader-prev-RUN.RANDOM: no other user can plant it in advance).
	Prev   string `json:"prev,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
}

// State is the undo state of an upload or template action.
type State struct {
	Files []FileState `json:"files"`
	Dirs  []string    `json:"dirs,omitempty"` // directories created, parents first
	Sudo  bool        `json:"sudo,omitempty"`
}

// verdict is the plan decision for one file.
type verdict struct {
	file    File
	change  modules.Change
	why     string // what changes, or why nothing does
	exists  bool
	sha     string
	mode    os.FileMode // remote mode when exists
	want    os.FileMode // mode the file will have
	ownerOK bool
}

func (o Options) chownSpec() string {
	switch {
	case o.Owner != "" && o.Group != "":
		return o.Owner + ":" + o.Group
	case o.Owner != "":
		return o.Owner
	case o.Group != "":
		return ":" + o.Group
	}
	return ""
}

// decide compares each file with the host, read-only.
func decide(ctx context.Context, r modules.Reader, files []File, opt Options) ([]verdict, error) {
	out := make([]verdict, 0, len(files))
	for _, f := range files {
		v := verdict{file: f, ownerOK: true}
		fi, err := r.Stat(ctx, f.Dest)
		if err != nil {
			return nil, err
		}
		if fi.IsLink {
			// Write through a symlink (a shared config linked into a release),
			// never replace the link itself. readlink -f resolves ".." the
			// way the kernel does, through linked directories.
			res, err := r.Probe(ctx, modules.Command{Cmd: "readlink -f -- " + modules.ShellQuote(f.Dest), Sudo: opt.Sudo})
			if err != nil {
				return nil, err
			}
			target := strings.TrimSpace(string(res.Stdout))
			if res.ExitCode != 0 || !path.IsAbs(target) {
				return nil, fmt.Errorf("%s is a symlink that does not resolve (%s)", f.Dest, strings.TrimSpace(string(res.Stderr)))
			}
			f.Dest, v.file.Dest = target, target
			if fi, err = r.Stat(ctx, f.Dest); err != nil {
				return nil, err
			}
		}
		if fi.Exists && fi.IsDir {
			return nil, fmt.Errorf("%s is a directory on the host; destination must name the file", f.Dest)
		}
		v.want = f.Mode
		if opt.Mode != 0 {
			v.want = opt.Mode
		}
		if !fi.Exists {
			v.change, v.why = modules.Create, "new"
			out = append(out, v)
			continue
		}
		v.exists, v.mode = true, fi.Mode.Perm()
		if opt.Mode == 0 {
			v.want = v.mode // an existing file keeps its mode unless mode is set
		}
		if v.sha, err = SHA256(ctx, r, f.Dest, opt.Sudo); err != nil {
			return nil, err
		}
		if opt.chownSpec() != "" {
			if v.ownerOK, err = ownerMatches(ctx, r, f.Dest, opt); err != nil {
				return nil, err
			}
		}
		sum, err := f.Sum()
		if err != nil {
			return nil, err
		}
		v.file.SHA256 = sum
		var what []string
		if v.sha != sum {
			what = append(what, "changed")
		}
		if v.mode != v.want {
			what = append(what, fmt.Sprintf("mode %04o -> %04o", v.mode, v.want))
		}
		if !v.ownerOK {
			what = append(what, "owner -> "+opt.chownSpec())
		}
		if len(what) == 0 {
			v.change, v.why = modules.NoOp, "sha256 matches"
		} else {
			v.change, v.why = modules.Update, strings.Join(what, ", ")
		}
		out = append(out, v)
	}
	return out, nil
}

// ownerMatches probes the owner and group of an existing file (names or ids).
func ownerMatches(ctx context.Context, r modules.Reader, p string, opt Options) (bool, error) {
	res, err := r.Probe(ctx, modules.Command{Cmd: "stat -c '%U %G %u %g' -- " + modules.ShellQuote(p), Sudo: opt.Sudo})
	if err != nil {
		return false, err
	}
	f := strings.Fields(string(res.Stdout))
	if res.ExitCode != 0 || len(f) != 4 {
		return false, nil
	}
	okOwner := opt.Owner == "" || opt.Owner == f[0] || opt.Owner == f[2]
	okGroup := opt.Group == "" || opt.Group == f[1] || opt.Group == f[3]
	return okOwner && okGroup, nil
}

// PlanFiles is the plan of putting files on the host; label names the action
// in the summary (the destination).
func PlanFiles(ctx context.Context, r modules.Reader, label string, files []File, opt Options) (*modules.Plan, error) {
	vs, err := decide(ctx, r, files, opt)
	if err != nil {
		return nil, modules.OnHost(r.Host().Name, err)
	}
	p := &modules.Plan{Change: modules.NoOp, Facts: map[string]string{}, Undo: "previous content restored"}
	var n = map[modules.Change]int{}
	var size int64
	var detail strings.Builder
	for _, v := range vs {
		n[v.change]++
		size += v.file.Size
		p.Facts["sha256 "+v.file.Dest] = v.sha
		if v.exists {
			p.Facts["mode "+v.file.Dest] = fmt.Sprintf("%04o", v.mode)
		}
		fmt.Fprintf(&detail, "%s %s (%s)\n", v.change, v.file.Dest, v.why)
	}
	switch {
	case n[modules.Create] == len(vs) && len(vs) > 0:
		p.Change = modules.Create
		p.Undo = "file removed"
	case n[modules.Create]+n[modules.Update] > 0:
		p.Change = modules.Update
	default:
		p.Reason = "sha256 matches"
		if len(vs) > 1 {
			p.Reason = fmt.Sprintf("all %d files unchanged", len(vs))
		}
	}
	if len(vs) == 1 {
		v := vs[0]
		label = v.file.Dest
		switch v.change {
		case modules.NoOp:
			p.Summary = fmt.Sprintf("%s (= unchanged)", label)
		default:
			p.Summary = fmt.Sprintf("%s (%s %s, %s)", label, v.change, v.why, modules.HumanBytes(v.file.Size))
		}
		return p, nil
	}
	p.Summary = fmt.Sprintf("%s (%d files, %s: %d new, %d changed, %d unchanged)", label, len(vs), modules.HumanBytes(size),
		n[modules.Create], n[modules.Update], n[modules.NoOp])
	p.Detail = detail.String()
	return p, nil
}

// ApplyFiles puts files on the host: it records the undo state, keeps the
// previous content beside each target (DEST.upgrader-prev-RUN), then writes
// each changed file atomically. Unchanged files are left alone.
func ApplyFiles(ctx context.Context, req *modules.Request, files []File, opt Options) (*modules.Outcome, error) {
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return modules.OnHost(req.Host, err) }
	vs, err := decide(ctx, t, files, opt)
	if err != nil {
		return nil, fail(err)
	}
	st := State{Sudo: opt.Sudo}
	var todo []verdict
	for _, v := range vs {
		if v.change == modules.NoOp {
			continue
		}
		fs := FileState{Path: v.file.Dest, Existed: v.exists, SHA256: v.sha, Mode: uint32(v.mode)}
		if v.exists {
			// A resumed run finds the copy its first attempt made: that is the real previous state.
			prev, err := findPrev(ctx, t, v.file.Dest, req.Env.RunID(), opt.Sudo)
			if err != nil {
				return nil, fail(err)
			}
			if prev != "" {
				pfi, err := t.Stat(ctx, prev)
				if err != nil {
					return nil, fail(err)
				}
				fs.Mode = uint32(pfi.Mode.Perm())
				if fs.SHA256, err = SHA256(ctx, t, prev, opt.Sudo); err != nil {
					return nil, fail(err)
				}
			} else {
				prev = prevPrefix(v.file.Dest, req.Env.RunID()) + strings.ToLower(rand.Text()[:16])
			}
			fs.Prev = prev
		}
		st.Files = append(st.Files, fs)
		todo = append(todo, v)
	}
	if len(todo) == 0 {
		return &modules.Outcome{Message: "unchanged (sha256 matches)"}, nil
	}
	if st.Dirs, err = missingDirs(ctx, t, todo); err != nil {
		return nil, fail(err)
	}
	undo, _ := json.Marshal(st)
	if req.Record != nil {
		if err := req.Record(undo); err != nil {
			return nil, err
		}
	}
	if err := write(ctx, req, t, todo, st, opt); err != nil {
		// Leave no mix of old and new files behind.
		if uerr := undoState(ctx, t, st); uerr != nil {
			return nil, fail(fmt.Errorf("%v; restoring the previous files also failed: %v", err, uerr))
		}
		return nil, fail(fmt.Errorf("%v (previous files restored)", err))
	}
	msg := fmt.Sprintf("%d file(s) written", len(todo))
	if len(vs) == 1 {
		msg = fmt.Sprintf("%s written (%s)", vs[0].file.Dest, vs[0].why)
	}
	return &modules.Outcome{Changed: true, Message: msg, Undo: undo}, nil
}

func write(ctx context.Context, req *modules.Request, t modules.Target, todo []verdict, st State, opt Options) error {
	q := modules.ShellQuote
	if len(st.Dirs) > 0 {
		cmd := "mkdir -p --"
		for _, d := range st.Dirs {
			cmd += " " + q(d)
		}
		if err := run(ctx, t, cmd, opt.Sudo); err != nil {
			return err
		}
	}
	var total, done int64
	for _, v := range todo {
		total += v.file.Size
	}
	for i, v := range todo {
		if fs := st.Files[i]; fs.Prev != "" {
			// Copies kept by earlier runs go: this write makes them stale.
			// cp -p keeps mode, owner and times of the previous file for Undo;
			// --remove-destination creates the copy with O_EXCL, never through
			// a name planted since (a resumed run keeps the copy findPrev found).
			cmd := fmt.Sprintf(`for f in %s.upgrader-prev-*; do [ "$f" = %s ] || rm -f -- "$f"; done; if ! [ -f %s ] || [ -h %s ]; then cp -p --remove-destination -- %s %s; fi`,
				q(fs.Path), q(fs.Prev), q(fs.Prev), q(fs.Prev), q(fs.Path), q(fs.Prev))
			if err := run(ctx, t, cmd, opt.Sudo); err != nil {
				return err
			}
		}
		if err := put(ctx, req, t, v, opt, func(n int64) { req.Env.Progress(done+n, total) }); err != nil {
			return fmt.Errorf("%s: %w", v.file.Dest, err)
		}
		done += v.file.Size
	}
	return nil
}

func prevPrefix(dest, run string) string { return dest + ".upgrader-prev-" + run + "." }

// findPrev returns this run's copy of dest's previous content made by an
// earlier attempt, or "": only a regular file with one link owned by the
// user running the command or by dest's owner counts (another user's
// planted file or link is not taken for it).
func findPrev(ctx context.Context, r modules.Reader, dest, run string, sudo bool) (string, error) {
	q := modules.ShellQuote
	res, err := r.Probe(ctx, modules.Command{Sudo: sudo, Cmd: fmt.Sprintf(
		`o=$(stat -L -c %%u -- %s); for f in %s*; do if [ -f "$f" ] && ! [ -h "$f" ] && [ "$(stat -c %%h -- "$f")" = 1 ] && { [ -O "$f" ] || [ "$(stat -c %%u -- "$f")" = "$o" ]; }; then printf '%%s\n' "$f"; fi; done; true`,
		q(dest), q(prevPrefix(dest, run)))})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("look for the previous copy of %s: exit %d: %s", dest, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	found := strings.Fields(string(res.Stdout))
	if len(found) == 0 {
		return "", nil
	}
	return found[0], nil
}

// missingDirs lists the parent directories of the files that do not exist yet.
func missingDirs(ctx context.Context, t modules.Reader, vs []verdict) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		var chain []string
		for d := path.Dir(v.file.Dest); d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			fi, err := t.Stat(ctx, d)
			if err != nil {
				return nil, err
			}
			if fi.Exists {
				break
			}
			chain = append([]string{d}, chain...)
		}
		out = append(out, chain...)
	}
	return out, nil
}

// put writes one file atomically with its final mode (and owner).
func put(ctx context.Context, req *modules.Request, t modules.Target, v verdict, opt Options, progress func(int64)) error {
	q := modules.ShellQuote
	if v.change == modules.Update && v.sha == v.file.SHA256 {
		// Same bytes: only mode or owner differ. Changed through the open
		// file once its content proves it is the file plan saw, so a link
		// put in its place meanwhile cannot redirect a root chmod.
		cmd := fmt.Sprintf(`set -e; exec 4< %s; set -- $(sha256sum /proc/self/fd/4); if [ "$1" != %s ]; then echo 'changed since plan' >&2; exit 1; fi; `,
			q(v.file.Dest), q(v.sha))
		if c := opt.chownSpec(); c != "" {
			cmd += fmt.Sprintf("chown %s /proc/self/fd/4; ", q(c))
		}
		cmd += fmt.Sprintf("chmod %04o /proc/self/fd/4", v.want)
		return run(ctx, t, cmd, opt.Sudo)
	}
	rc, err := v.file.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	body := &counter{r: rc, f: progress}
	if !opt.Sudo {
		return t.WriteFile(ctx, v.file.Dest, body, v.want)
	}
	// With sudo the user may not write beside the target: stage the bytes in
	// /tmp (a random name, 0600), then copy and rename as root within the
	// target directory, never through a name another user could plant.
	stage := "/tmp/.upgrader-" + strings.ToLower(rand.Text())
	if err := t.WriteFile(ctx, stage, body, 0o600); err != nil {
		return err
	}
	err = run(ctx, t, modules.Copy{Src: stage, Dest: v.file.Dest, Mode: v.want, Chown: opt.chownSpec(), OwnSrc: true}.Script(), true)
	_ = run(ctx, t, "rm -f -- "+q(stage), false)
	return err
}

// UndoFiles restores the exact previous bytes and mode of every file in the
// state (removing files that did not exist), newest first, then removes the
// directories the action created when they are empty.
func UndoFiles(ctx context.Context, req *modules.Request, raw json.RawMessage) error {
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("undo state: %w", err)
	}
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return err
	}
	if err := undoState(ctx, t, st); err != nil {
		return modules.OnHost(req.Host, fmt.Errorf("undo: %w", err))
	}
	return nil
}

func undoState(ctx context.Context, t modules.Target, st State) error {
	q := modules.ShellQuote
	var errs []string
	for i := len(st.Files) - 1; i >= 0; i-- {
		f := st.Files[i]
		if err := undoFile(ctx, t, f, st.Sudo); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", f.Path, err))
		}
	}
	for i := len(st.Dirs) - 1; i >= 0; i-- {
		// Only empty directories go: something else may have put files there since.
		_ = run(ctx, t, "rmdir -- "+q(st.Dirs[i])+" 2>/dev/null || true", st.Sudo)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func undoFile(ctx context.Context, t modules.Target, f FileState, sudo bool) error {
	q := modules.ShellQuote
	if !f.Existed {
		return run(ctx, t, "rm -f -- "+q(f.Path), sudo)
	}
	pfi, err := t.Stat(ctx, f.Prev)
	if err != nil {
		return err
	}
	if !pfi.Exists {
		// The action stopped before it copied the file, so before it wrote it.
		sha, err := SHA256(ctx, t, f.Path, sudo)
		if err != nil {
			return err
		}
		if sha == f.SHA256 {
			return nil
		}
		return fmt.Errorf("the previous content (%s) is gone and the file changed", f.Prev)
	}
	// The copy is taken back only with the content recorded for it: a link
	// planted at its name cannot make root copy another file over Path.
	cp := modules.Copy{Src: f.Prev, Dest: f.Path, Mode: os.FileMode(f.Mode), SrcOwner: true, SrcSHA256: f.SHA256}
	return run(ctx, t, cp.Script()+" && rm -f -- "+q(f.Prev), sudo)
}

func run(ctx context.Context, t modules.Target, cmd string, sudo bool) error {
	res, err := t.Run(ctx, modules.Command{Cmd: cmd, Sudo: sudo})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: exit %d: %s", cmd, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// SHA256 is the hex sha256 of a remote file ("" when missing); with sudo it
// is computed as root, for files the user may not read.
func SHA256(ctx context.Context, r modules.Reader, p string, sudo bool) (string, error) {
	if !sudo {
		return r.SHA256(ctx, p)
	}
	q := modules.ShellQuote(p)
	res, err := r.Probe(ctx, modules.Command{Cmd: "if [ -f " + q + " ]; then sha256sum -- " + q + "; fi", Sudo: true})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("sha256 %s: exit %d: %s", p, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	if f := strings.Fields(string(res.Stdout)); len(f) > 0 {
		return f[0], nil
	}
	return "", nil
}

// ReadFile reads at most limit bytes of a remote file; with sudo as root.
func ReadFile(ctx context.Context, r modules.Reader, p string, limit int64, sudo bool) ([]byte, error) {
	if !sudo {
		return r.ReadFile(ctx, p, limit)
	}
	res, err := r.Probe(ctx, modules.Command{Cmd: fmt.Sprintf("head -c %d -- %s", limit, modules.ShellQuote(p)), Sudo: true})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("read %s: exit %d: %s", p, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return res.Stdout, nil
}

// ParseMode reads an octal mode such as "0644" or "755".
func ParseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 || n == 0 {
		return 0, fmt.Errorf("mode %q is not an octal file mode like \"0644\"", s)
	}
	return os.FileMode(n), nil
}

type counter struct {
	r io.Reader
	n int64
	f func(int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.f != nil {
		c.f(c.n)
	}
	return n, err
}

// ValidateCommon checks destination, mode, owner and group (upload and template).
func ValidateCommon(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if d := modules.GetString(v, "destination"); d != "" && !path.IsAbs(d) {
		ds = append(ds, diags.At(*cfg.Range("destination"), "Relative destination path",
			fmt.Sprintf("destination = %q must be an absolute path on the host, like /etc/app/app.conf.", d)))
	} else if modules.Get(v, "destination").IsKnown() && d == "" {
		ds = append(ds, diags.At(*cfg.Range("destination"), "Empty destination", "destination must be an absolute path on the host."))
	}
	if m := modules.GetString(v, "mode"); m != "" {
		if _, err := ParseMode(m); err != nil {
			ds = append(ds, diags.At(*cfg.Range("mode"), "Invalid mode", err.Error()))
		}
	}
	if !modules.GetBool(v, "sudo", false) {
		for _, a := range []string{"owner", "group"} {
			if modules.GetString(v, a) != "" {
				ds = append(ds, diags.At(*cfg.Range(a), "Changing "+a+" needs sudo",
					"Set sudo = true in this block: only root may give a file to another "+a+"."))
			}
		}
	}
	return ds
}

// LocalPath resolves a local path against the configuration directory.
func LocalPath(cfg *modules.Config, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cfg.Dir, p)
}

// OptionsOf reads mode, owner, group and sudo.
func OptionsOf(cfg *modules.Config) (Options, error) {
	v := cfg.Value
	o := Options{Owner: modules.GetString(v, "owner"), Group: modules.GetString(v, "group"), Sudo: modules.GetBool(v, "sudo", false)}
	if m := modules.GetString(v, "mode"); m != "" {
		var err error
		if o.Mode, err = ParseMode(m); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Known reports whether the attributes are known (not "known after" a node).
func Known(cfg *modules.Config, attrs ...string) bool {
	for _, a := range attrs {
		if !modules.Get(cfg.Value, a).IsWhollyKnown() {
			return false
		}
	}
	return true
}
