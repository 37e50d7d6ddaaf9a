// Package release is the `release` step action: Capistrano-style releases
// under dir (releases/VERSION, shared/, current -> releases/VERSION). Apply
// unpacks the artifact into a temporary directory renamed into place, links
// shared paths, switches current atomically (new symlink + rename), runs
// activate and prunes old releases; Undo points current back and runs
// activate. It imports only modules and lang/diags.
package release

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// DefaultKeep is how many releases stay when keep is not set.
const DefaultKeep = 5

// Release is the release action.
type Release struct{}

var (
	_ modules.Action        = (*Release)(nil)
	_ modules.Undoer        = (*Release)(nil)
	_ modules.Validator     = (*Release)(nil)
	_ modules.Repeatable    = (*Release)(nil)
	_ modules.Describer     = (*Release)(nil)
	_ modules.UndoDescriber = (*Release)(nil)
)

func (*Release) Kind() string { return "release" }

// Describe: the offline plan shows these arguments.
func (*Release) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"artifact", "dir", "version"}}
}

// UndoText is what the plan says undoes it without a rollback block.
func (*Release) UndoText() string {
	return "current points back to the previous release, activate runs"
}

func (*Release) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"artifact": &hcldec.AttrSpec{Name: "artifact", Type: cty.String, Required: true},
		"dir":      &hcldec.AttrSpec{Name: "dir", Type: cty.String, Required: true},
		"version":  &hcldec.AttrSpec{Name: "version", Type: cty.String, Required: true},
		"keep":     &hcldec.AttrSpec{Name: "keep", Type: cty.Number},
		"shared":   &hcldec.AttrSpec{Name: "shared", Type: cty.List(cty.String)},
		"activate": &hcldec.AttrSpec{Name: "activate", Type: cty.String},
		"sudo":     &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
	}
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// Validate reports a dir that is not absolute, a version that cannot be a
// directory name, an artifact that is missing or not a tar.gz, a bad keep
// and shared paths that leave the release.
func (*Release) Validate(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if d := modules.GetString(v, "dir"); modules.Get(v, "dir").IsKnown() && (!path.IsAbs(d) || path.Clean(d) == "/") {
		ds = append(ds, diags.At(*cfg.Range("dir"), "Release dir must be absolute",
			fmt.Sprintf("dir = %q must be an absolute directory on the host (not /), like /opt/app.", d)))
	}
	if ver := modules.GetString(v, "version"); modules.Get(v, "version").IsKnown() && !versionRE.MatchString(ver) {
		ds = append(ds, diags.At(*cfg.Range("version"), "Invalid release version",
			fmt.Sprintf("version = %q becomes a directory name: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit.", ver)))
	}
	if a := modules.GetString(v, "artifact"); a != "" {
		if _, err := os.Stat(localPath(cfg, a)); err != nil {
			ds = append(ds, diags.At(*cfg.Range("artifact"), "Artifact not found",
				fmt.Sprintf("The local file %q does not exist (relative paths start at %s).", a, cfg.Dir)))
		} else if err := checkTarGz(localPath(cfg, a)); err != nil {
			ds = append(ds, diags.At(*cfg.Range("artifact"), "Artifact is not a .tar.gz", err.Error()))
		}
	}
	if k := modules.Get(v, "keep"); k.IsKnown() && !k.IsNull() {
		if n, acc := k.AsBigFloat().Int64(); !k.AsBigFloat().IsInt() || acc != 0 || n < 1 {
			ds = append(ds, diags.At(*cfg.Range("keep"), "Invalid keep", "keep must be a whole number of releases, at least 1."))
		}
	}
	for _, s := range modules.GetStrings(v, "shared") {
		c := path.Clean(s)
		if s == "" || path.IsAbs(s) || c == "." || c == ".." || strings.HasPrefix(c, "../") {
			ds = append(ds, diags.At(*cfg.Range("shared"), "Invalid shared path",
				fmt.Sprintf("shared path %q must be relative to the release and stay inside it, like \"log\" or \"config/app.conf\".", s)))
		}
	}
	if a := modules.Get(v, "activate"); a.IsKnown() && !a.IsNull() && strings.TrimSpace(a.AsString()) == "" {
		ds = append(ds, diags.At(*cfg.Range("activate"), "Empty activate command", "Remove activate or give it a command."))
	}
	return ds
}

// checkTarGz reads the gzip magic and the first tar header.
func checkTarGz(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("cannot read the artifact: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s is not gzip-compressed (%v)", p, err)
	}
	if _, err := tar.NewReader(zr).Next(); err == io.EOF {
		return fmt.Errorf("%s is an empty tar archive", p)
	} else if err != nil {
		return fmt.Errorf("%s is gzip-compressed but not a tar archive (%v)", p, err)
	}
	return nil
}

func localPath(cfg *modules.Config, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cfg.Dir, p)
}

type args struct {
	artifact, dir, version, activate string
	keep                             int
	shared                           []string
	sudo                             bool
}

func decode(cfg *modules.Config) args {
	v := cfg.Value
	return args{
		artifact: localPath(cfg, modules.GetString(v, "artifact")),
		dir:      path.Clean(modules.GetString(v, "dir")),
		version:  modules.GetString(v, "version"),
		activate: modules.GetString(v, "activate"),
		keep:     modules.GetInt(v, "keep", DefaultKeep),
		shared:   modules.GetStrings(v, "shared"),
		sudo:     modules.GetBool(v, "sudo", false),
	}
}

func (a args) releaseDir(version string) string { return path.Join(a.dir, "releases", version) }
func (a args) current() string                  { return path.Join(a.dir, "current") }

// currentRelease reads where current points: the link text, the absolute
// path and the version (its base name); all "" without a current link.
func currentRelease(ctx context.Context, r modules.Reader, a args) (link, abs, version string, err error) {
	fi, err := r.Stat(ctx, a.current())
	if err != nil || !fi.Exists {
		return "", "", "", err
	}
	if !fi.IsLink {
		return "", "", "", fmt.Errorf("%s exists and is not a symlink", a.current())
	}
	link, abs = fi.LinkTarget, fi.LinkTarget
	if !path.IsAbs(abs) {
		abs = path.Join(a.dir, abs)
	}
	return link, path.Clean(abs), path.Base(abs), nil
}

func (*Release) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	cfg := req.Config
	a := decode(cfg)
	r, err := req.Env.Reader(req.Host)
	if err != nil {
		return nil, err
	}
	if !modules.Get(cfg.Value, "dir").IsKnown() {
		return &modules.Plan{Change: modules.Update, Summary: "release (known after apply)", Undo: "current points back, activate runs"}, nil
	}
	_, abs, old, err := currentRelease(ctx, r, a)
	if err != nil {
		return nil, modules.OnHost(req.Host, err)
	}
	oldText := old
	if oldText == "" {
		oldText = "(none)"
	}
	p := &modules.Plan{Facts: map[string]string{"current " + a.dir: abs}}
	if !modules.Get(cfg.Value, "version").IsKnown() || !modules.Get(cfg.Value, "artifact").IsKnown() {
		p.Change, p.Summary = modules.Update, fmt.Sprintf("current: %s -> (known after apply)", oldText)
		return p, nil
	}
	rel := a.releaseDir(a.version)
	fi, err := r.Stat(ctx, rel)
	if err != nil {
		return nil, modules.OnHost(req.Host, err)
	}
	if abs == rel && fi.Exists {
		p.Change, p.Summary, p.Reason = modules.NoOp, fmt.Sprintf("current: %s (= unchanged)", a.version), "current is already "+a.version
		return p, nil
	}
	p.Change, p.Summary = modules.Update, fmt.Sprintf("current: %s -> %s", oldText, a.version)
	p.Undo = fmt.Sprintf("current points back to %s", oldText)
	if a.activate != "" {
		p.Undo += ", activate runs"
	}
	if old == "" {
		p.Change, p.Undo = modules.Create, "current and the release removed"
	}
	var d strings.Builder
	if fi.Exists {
		fmt.Fprintf(&d, "%s exists: switch only\n", rel)
	} else {
		st, err := os.Stat(a.artifact)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&d, "upload %s (%s), unpack into %s\n", filepath.Base(a.artifact), modules.HumanBytes(st.Size()), rel)
	}
	for _, s := range a.shared {
		fmt.Fprintf(&d, "link %s -> %s\n", path.Join(rel, s), path.Join(a.dir, "shared", s))
	}
	fmt.Fprintf(&d, "switch %s -> %s\n", a.current(), rel)
	if a.activate != "" {
		fmt.Fprintf(&d, "activate: %s\n", modules.Shown(cfg.Value, "activate"))
	}
	fmt.Fprintf(&d, "keep the newest %d releases (never %s or the previous one)\n", a.keep, a.version)
	// The new release will be the newest; the rest keep their activation order.
	if res, err := r.Probe(ctx, modules.Command{Cmd: "ls -1t -- " + modules.ShellQuote(path.Join(a.dir, "releases")), Sudo: a.sudo}); err == nil && res.ExitCode == 0 {
		names := []string{a.version}
		for _, n := range strings.Fields(string(res.Stdout)) {
			if n != a.version {
				names = append(names, n)
			}
		}
		if gone := pruned(names, a.version, old, a.keep); len(gone) > 0 {
			fmt.Fprintf(&d, "prune: %s\n", strings.Join(gone, ", "))
		}
	}
	p.Detail = d.String()
	return p, nil
}

// State is what Undo needs, recorded before Apply changes anything.
type State struct {
	Dir          string   `json:"dir"`
	Version      string   `json:"version"`
	PreviousLink string   `json:"previous_link,omitempty"` // current's link text before; "" when none
	Created      bool     `json:"created"`                 // releases/VERSION made by this action
	MadeDirs     []string `json:"made_dirs,omitempty"`     // dir, releases, shared when they were missing
	SharedMade   []string `json:"shared_made,omitempty"`   // shared/X created by this action
	Trash        string   `json:"trash"`                   // where pruned releases wait until the next run
	// Activate says whether the block has an activate command; Undo takes
	// the command itself from the block, evaluated again, so that a secret
	// in it never reaches the journal.
	Activate hasCommand `json:"activate,omitempty"`
	Sudo     bool       `json:"sudo,omitempty"`
}

// hasCommand is true when a command was given. Older journals held the
// command text here: any non-empty text reads as true.
type hasCommand bool

func (h *hasCommand) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*h = hasCommand(v)
	case string:
		*h = v != ""
	}
	return nil
}

func (*Release) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	a := decode(req.Config)
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return modules.OnHost(req.Host, fmt.Errorf("release %s: %w", a.version, err)) }
	link, abs, old, err := currentRelease(ctx, t, a)
	if err != nil {
		return nil, fail(err)
	}
	rel := a.releaseDir(a.version)
	fi, err := t.Stat(ctx, rel)
	if err != nil {
		return nil, fail(err)
	}
	if abs == rel && fi.Exists {
		return &modules.Outcome{Message: "current is already " + a.version}, nil
	}
	st := State{Dir: a.dir, Version: a.version, PreviousLink: link, Created: !fi.Exists,
		Trash:    path.Join(a.dir, fmt.Sprintf("%s%s-%s-%d", trashPrefix, req.Env.RunID(), safeName(req.Node), req.Index)),
		Activate: a.activate != "", Sudo: a.sudo}
	for _, d := range []string{a.dir, path.Join(a.dir, "releases"), path.Join(a.dir, "shared")} {
		if dfi, err := t.Stat(ctx, d); err != nil {
			return nil, fail(err)
		} else if !dfi.Exists {
			st.MadeDirs = append(st.MadeDirs, d)
		}
	}
	seen := map[string]bool{}
	for _, s := range a.shared {
		p := path.Join(a.dir, "shared", s)
		if sfi, err := t.Stat(ctx, p); err != nil {
			return nil, fail(err)
		} else if !sfi.Exists {
			st.SharedMade = append(st.SharedMade, p)
			// Its missing parents inside shared/ are made too: undo removes them
			// (parents first here, so the reverse rmdir takes children first).
			var parents []string
			for d := path.Dir(p); d != path.Join(a.dir, "shared") && d != a.dir && !seen[d]; d = path.Dir(d) {
				seen[d] = true
				dfi, err := t.Stat(ctx, d)
				if err != nil {
					return nil, fail(err)
				}
				if dfi.Exists {
					break
				}
				parents = append([]string{d}, parents...)
			}
			st.MadeDirs = append(st.MadeDirs, parents...)
		}
	}
	raw, _ := json.Marshal(st)
	if req.Record != nil {
		if err := req.Record(raw); err != nil {
			return nil, err
		}
	}
	if err := apply(ctx, req, t, a, st, old); err != nil {
		// Put the host back as it was before returning: a failed release must
		// not stay current.
		if uerr := undo(ctx, req, t, st, a.activate); uerr != nil {
			return nil, fail(fmt.Errorf("%v; rolling back also failed: %v", err, uerr))
		}
		return nil, fail(fmt.Errorf("%v (rolled back to %s)", err, orNone(old)))
	}
	return &modules.Outcome{Changed: true, Message: fmt.Sprintf("current: %s -> %s", orNone(old), a.version), Undo: raw}, nil
}

// trashPrefix names the directories pruned releases wait in, one per run
// and action, until a later run removes them.
const trashPrefix = ".upgrader-pruned-"

var unsafeRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeRE.ReplaceAllString(s, "_") }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func apply(ctx context.Context, req *modules.Request, t modules.Target, a args, st State, old string) error {
	q := modules.ShellQuote
	rel := a.releaseDir(a.version)
	releases := path.Join(a.dir, "releases")
	// Trash from earlier runs is no longer needed for their undo.
	if err := sh(ctx, req, t, a.sudo, fmt.Sprintf(
		`mkdir -p -- %s %s && for d in %s/%s*; do case "$d" in %s*) ;; *) rm -rf -- "$d" ;; esac; done`,
		q(releases), q(path.Join(a.dir, "shared")), q(a.dir), trashPrefix, q(path.Join(a.dir, trashPrefix+req.Env.RunID()+"-")))); err != nil {
		return err
	}
	if st.Created {
		if err := unpack(ctx, req, t, a, rel); err != nil {
			return err
		}
	}
	for _, s := range a.shared {
		sp, rp := path.Join(a.dir, "shared", s), path.Join(rel, s)
		// Seed shared/X from the release the first time, then link it in.
		cmd := fmt.Sprintf(`S=%s; R=%s; if [ ! -e "$S" ] && [ ! -L "$S" ]; then mkdir -p -- "$(dirname -- "$S")"; if [ -e "$R" ]; then cp -a -- "$R" "$S"; else mkdir -p -- "$S"; fi; fi; rm -rf -- "$R" && mkdir -p -- "$(dirname -- "$R")" && ln -sfn -- "$S" "$R"`, q(sp), q(rp))
		if err := sh(ctx, req, t, a.sudo, cmd); err != nil {
			return err
		}
	}
	// touch: prune keeps the most recently activated releases.
	if err := sh(ctx, req, t, a.sudo, "touch -- "+q(rel)+" && "+switchLink(a.dir, rel)); err != nil {
		return err
	}
	if a.activate != "" {
		if err := sh(ctx, req, t, a.sudo, "cd "+q(a.current())+" && "+a.activate); err != nil {
			return fmt.Errorf("activate: %w", err)
		}
	}
	return prune(ctx, req, t, a, st, old)
}

func unpack(ctx context.Context, req *modules.Request, t modules.Target, a args, rel string) error {
	q := modules.ShellQuote
	f, err := os.Open(a.artifact)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// With sudo the user may not write in dir: stage the artifact in /tmp.
	// Random names: nobody can plant a file or link there in advance.
	stage := path.Join(a.dir, "releases", "."+safeName(a.version)+".tar.gz.upgrader-"+strings.ToLower(rand.Text()))
	if a.sudo {
		stage = "/tmp/.upgrader-" + strings.ToLower(rand.Text())
	}
	total := fi.Size()
	if err := t.WriteFile(ctx, stage, &progress{r: f, f: func(n int64) { req.Env.Progress(n, total) }}, 0o600); err != nil {
		return fmt.Errorf("upload %s: %w", filepath.Base(a.artifact), err)
	}
	// Unpack into a temporary directory renamed into place, so a partial
	// unpack never appears as a release. The archive is read from the file
	// we staged (checked through its descriptor) and tar runs inside the
	// directory mktemp made, checked by its physical path, so a name
	// swapped meanwhile cannot send root's reads or writes elsewhere.
	cmd := fmt.Sprintf(`set -e; exec 4< %[1]s; %[2]srm -f -- %[1]s; D=$(cd -P -- %[3]s && pwd -P); T=$(mktemp -d -p "$D" %[4]s); trap 'rm -rf -- "$T"' EXIT; cd -P -- "$T"; if [ "$(pwd -P)" != "$T" ]; then echo "$T was replaced; not unpacked" >&2; exit 1; fi; tar -xzf - <&4; chmod 755 .; cd /; mv -T -- "$T" %[5]s; trap - EXIT`,
		q(stage), modules.OwnFileCheck(4, stage), q(path.Join(a.dir, "releases")), q(".unpack-"+safeName(a.version)+".XXXXXX"), q(rel))
	return sh(ctx, req, t, a.sudo, cmd)
}

// switchLink points DIR/current at target: a new link under a name mktemp
// picks inside the script (never one another user planted) renamed over
// current, so readers never find current missing.
func switchLink(dir, target string) string {
	q := modules.ShellQuote
	return fmt.Sprintf(`T=$(mktemp -u -p %s .current.upgrader-XXXXXXXXXX) && ln -s -- %s "$T" && mv -T -- "$T" %s`,
		q(dir), q(target), q(path.Join(dir, "current")))
}

// prune moves releases beyond keep (newest activated first) into the run's
// trash, never the new one or the previous one, so Undo can put them back.
func prune(ctx context.Context, req *modules.Request, t modules.Target, a args, st State, old string) error {
	q := modules.ShellQuote
	res, err := t.Run(ctx, modules.Command{Cmd: "ls -1t -- " + q(path.Join(a.dir, "releases")), Sudo: a.sudo})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("list releases: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	var gone []string
	for _, name := range pruned(strings.Fields(string(res.Stdout)), a.version, old, a.keep) {
		gone = append(gone, q(path.Join(a.dir, "releases", name)))
	}
	if len(gone) == 0 {
		return nil
	}
	fmt.Fprintf(logOf(req), "pruning %d old release(s)\n", len(gone))
	return sh(ctx, req, t, a.sudo, fmt.Sprintf("mkdir -p -- %s && mv -- %s %s/", q(st.Trash), strings.Join(gone, " "), q(st.Trash)))
}

// pruned picks the releases to remove from names (newest activated first):
// all beyond the newest keep, never the new version or the previous one.
func pruned(names []string, version, old string, keep int) []string {
	kept := 0
	var gone []string
	for _, name := range names {
		switch {
		case name == version || name == old:
			kept++
		case kept < keep:
			kept++
		default:
			gone = append(gone, name)
		}
	}
	return gone
}

func (*Release) Undo(ctx context.Context, req *modules.Request, raw json.RawMessage) error {
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("release undo state: %w", err)
	}
	t, err := req.Env.Target(req.Host)
	if err != nil {
		return err
	}
	activate := ""
	if st.Activate {
		if activate = modules.GetString(req.Config.Value, "activate"); activate == "" {
			return modules.OnHost(req.Host, fmt.Errorf("undo release %s: the release ran an activate command, and the block has none now", st.Version))
		}
	}
	if err := undo(ctx, req, t, st, activate); err != nil {
		return modules.OnHost(req.Host, fmt.Errorf("undo release %s: %w", st.Version, err))
	}
	return nil
}

// undo puts current back where it pointed, removes what the action made,
// returns pruned releases and runs activate in the previous release.
func undo(ctx context.Context, req *modules.Request, t modules.Target, st State, activate string) error {
	q := modules.ShellQuote
	cur := path.Join(st.Dir, "current")
	var cmds []string
	if st.PreviousLink != "" {
		cmds = append(cmds, switchLink(st.Dir, st.PreviousLink))
	} else {
		cmds = append(cmds, "rm -f -- "+q(cur))
	}
	if st.Created {
		cmds = append(cmds, "rm -rf -- "+q(path.Join(st.Dir, "releases", st.Version)))
	}
	cmds = append(cmds, fmt.Sprintf(`if [ -d %s ]; then for d in %s/* ; do [ -e "$d" ] && mv -- "$d" %s/; done; rmdir -- %s; fi; true`,
		q(st.Trash), q(st.Trash), q(path.Join(st.Dir, "releases")), q(st.Trash)))
	for i := len(st.SharedMade) - 1; i >= 0; i-- {
		cmds = append(cmds, "rm -rf -- "+q(st.SharedMade[i]))
	}
	for i := len(st.MadeDirs) - 1; i >= 0; i-- {
		cmds = append(cmds, "rmdir -- "+q(st.MadeDirs[i])+" 2>/dev/null || true")
	}
	if err := sh(ctx, req, t, st.Sudo, strings.Join(cmds, " && ")); err != nil {
		return err
	}
	if st.PreviousLink != "" && activate != "" {
		if err := sh(ctx, req, t, st.Sudo, "cd "+q(cur)+" && "+activate); err != nil {
			return fmt.Errorf("activate: %w", err)
		}
	}
	return nil
}

// Safe: Apply re-reads current and the releases before acting.
func (*Release) Safe(*modules.Config) bool { return true }

func sh(ctx context.Context, req *modules.Request, t modules.Target, sudo bool, cmd string) error {
	log := modules.SyncWriter(req.Log)
	so, se := modules.Lines(log), modules.Lines(log)
	res, err := t.Run(ctx, modules.Command{Cmd: cmd, Sudo: sudo, Stdout: so, Stderr: se})
	so.Flush()
	se.Flush()
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		out := req.Secrets.Redact(strings.TrimSpace(string(res.Stderr) + "\n" + string(res.Stdout)))
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		return fmt.Errorf("exit %d: %s", res.ExitCode, out)
	}
	return nil
}

func logOf(req *modules.Request) io.Writer {
	if req.Log == nil {
		return io.Discard
	}
	return req.Log
}

type progress struct {
	r io.Reader
	n int64
	f func(int64)
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.f(p.n)
	return n, err
}
