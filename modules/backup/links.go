package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
)

// Link records a backed-up path that was a symbolic link (or lay under one)
// when the backup was taken: the archive holds what it resolved to, and the
// link itself when the path is one, so a restore puts back both.
type Link struct {
	Path   string `json:"path"`   // as written in paths
	Target string `json:"target"` // what it resolved to (readlink -f), absolute
	// Symlink: the path itself is the link (archived as a link entry);
	// false: a directory above it is one, and only Target is archived.
	Symlink bool `json:"symlink"`
}

// layout is what a backup of some paths archives once links are resolved:
// trees are archived with everything inside, links as the link alone.
type layout struct {
	trees []string
	links []string
}

// members is every archive member a restore extracts, trees first.
func (l layout) members() []string {
	return append(append([]string(nil), l.trees...), l.links...)
}

// layoutOf resolves paths through links: a path that resolved elsewhere is
// archived as its target (plus the link entry when it is the link). A tree
// inside another tree, or a link inside a tree, is already in that tree.
func layoutOf(paths []string, links []Link) layout {
	byPath := map[string]Link{}
	for _, l := range links {
		byPath[l.Path] = l
	}
	var trees, ls []string
	for _, p := range paths {
		l, ok := byPath[p]
		switch {
		case !ok:
			trees = append(trees, p)
		case l.Symlink:
			trees, ls = append(trees, l.Target), append(ls, p)
		default:
			trees = append(trees, l.Target)
		}
	}
	var out layout
	for _, t := range dedupe(trees) {
		if !insideAny(t, trees, false) {
			out.trees = append(out.trees, t)
		}
	}
	for _, l := range dedupe(ls) {
		if !insideAny(l, out.trees, true) {
			out.links = append(out.links, l)
		}
	}
	return out
}

// insideAny reports whether p lies inside one of dirs (or is one, when
// orEqual).
func insideAny(p string, dirs []string, orEqual bool) bool {
	for _, d := range dirs {
		if under(p, d) && (orEqual || p != d) {
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// mapPaths turns restore paths (each inside a backed-up path) into archive
// locations: a path under a link is found under what the link resolved to;
// the link path itself restores the link and its target.
func mapPaths(ps []string, links []Link) layout {
	var trees, ls []string
	for _, p := range ps {
		mapped := false
		for _, l := range links {
			if !under(p, l.Path) {
				continue
			}
			if p == l.Path && l.Symlink {
				ls = append(ls, p)
			}
			trees = append(trees, l.Target+strings.TrimPrefix(p, l.Path))
			mapped = true
			break
		}
		if !mapped {
			trees = append(trees, p)
		}
	}
	return layout{trees: dedupe(trees), links: dedupe(ls)}
}

// resolveScript prints, for each path, "L" (the path is a link to an
// existing file), "D" (a dangling link) or "P" (not a link), then what
// readlink -f makes of it, NUL-terminated.
func resolveScript(paths []string) string {
	var b strings.Builder
	b.WriteString("cd / || exit 100\nfor p in")
	for _, p := range paths {
		b.WriteString(" " + modules.ShellQuote(p))
	}
	b.WriteString("; do\n")
	b.WriteString("  if [ -L \"$p\" ] && [ -e \"$p\" ]; then k=L; elif [ -L \"$p\" ]; then k=D; else k=P; fi\n")
	b.WriteString("  printf %s \"$k\"; readlink -fz -- \"$p\" || printf '%s\\0' \"$p\"\n")
	b.WriteString("done\n")
	return b.String()
}

// resolve asks the host what each path resolves to. A dangling link is
// kept as a link, with a note (there is nothing behind it to back up).
func resolve(ctx context.Context, r runner, s settings) ([]Link, []string, error) {
	res, err := r.probe(ctx, modules.Command{Cmd: resolveScript(s.paths), Sudo: s.sudo, Timeout: time.Minute})
	if err != nil {
		return nil, nil, err
	}
	if res.ExitCode != 0 {
		return nil, nil, fmt.Errorf("%s: cannot resolve the paths to back up: %w", r.where(), scriptFailure("readlink", res.ExitCode, res.Stderr))
	}
	recs := bytes.Split(bytes.TrimSuffix(res.Stdout, []byte{0}), []byte{0})
	if len(recs) != len(s.paths) {
		return nil, nil, fmt.Errorf("%s: resolving the paths to back up printed %d records for %d paths", r.where(), len(recs), len(s.paths))
	}
	var links []Link
	var notes []string
	for i, rec := range recs {
		p := s.paths[i]
		if len(rec) < 2 || rec[1] != '/' {
			return nil, nil, fmt.Errorf("%s: readlink -f %s printed %q", r.where(), p, rec)
		}
		kind, target := rec[0], path.Clean(string(rec[1:]))
		switch {
		case kind == 'D':
			notes = append(notes, fmt.Sprintf("%s is a link to %s, which does not exist: only the link is kept", p, target))
		case target == p:
		case target == "/":
			return nil, nil, fmt.Errorf("%s: %s resolves to /: refusing to back up or restore / as a whole", r.where(), p)
		default:
			links = append(links, Link{Path: p, Target: target, Symlink: kind == 'L'})
		}
	}
	return links, notes, nil
}

// outsideLinksScript lists the symbolic links inside trees that point to a
// directory, with what they resolve to: pairs of NUL-terminated names.
func outsideLinksScript(trees []string) string {
	var qs []string
	for _, t := range trees {
		qs = append(qs, modules.ShellQuote(member(t)))
	}
	return "cd / || exit 100\nexec find " + strings.Join(qs, " ") +
		` -mindepth 1 -type l -xtype d -exec sh -c 'for l; do printf "%s\0" "$l"; readlink -fz -- "$l" || printf "\0"; done' sh {} +`
}

// maxLinkNotes bounds the notes about links leaving the backup.
const maxLinkNotes = 10

// outsideLinks names the links to directories inside the backup whose
// target it does not hold: the backup keeps the link, not what it points
// to, and the operator may well expect the opposite.
func outsideLinks(ctx context.Context, r runner, s settings, l layout) ([]string, error) {
	res, err := r.probe(ctx, modules.Command{Cmd: outsideLinksScript(l.trees), Sudo: s.sudo, Timeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	f := bytes.Split(bytes.TrimSuffix(res.Stdout, []byte{0}), []byte{0})
	var notes []string
	more := 0
	for i := 0; i+1 < len(f); i += 2 {
		link, target := "/"+strings.TrimPrefix(string(f[i]), "./"), string(f[i+1])
		if target == "" || insideAny(target, l.trees, true) || matchesExclude(link, s.exclude) {
			continue
		}
		if len(notes) == maxLinkNotes {
			more++
			continue
		}
		notes = append(notes, fmt.Sprintf("%s is a link to the directory %s, outside the backup: only the link is kept; add %q to paths to keep what it holds", link, target, target))
	}
	if more > 0 {
		notes = append(notes, fmt.Sprintf("and %d more such link(s)", more))
	}
	return notes, nil
}

// matchesExclude approximates the find expression of findExcludes for one path.
func matchesExclude(p string, exclude []string) bool {
	for _, e := range exclude {
		var ok bool
		switch {
		case strings.HasPrefix(e, "/"):
			ok, _ = path.Match(e, p)
			ok = ok || under(p, e)
		case strings.Contains(e, "/"):
			ok, _ = path.Match("*/"+e, p)
		default:
			ok, _ = path.Match(e, path.Base(p))
		}
		if ok {
			return true
		}
	}
	return false
}

// linkText says how links were resolved, for plans and messages.
func linkText(links []Link) string {
	var ls []string
	for _, l := range links {
		if l.Symlink {
			ls = append(ls, fmt.Sprintf("%s -> %s (the link and what it points to)", l.Path, l.Target))
		} else {
			ls = append(ls, fmt.Sprintf("%s is %s (a directory above it is a link)", l.Path, l.Target))
		}
	}
	return strings.Join(ls, "\n")
}

// entryRules is what a host archive may hold: entries inside its trees or
// exactly its link entries, by relative "./" names, never below a symlink
// entry, no device nodes, hard links only to entries it may hold. A host
// that was taken over can send any tar stream; these rules keep a restore
// (or a restore onto another host) inside the backed-up paths.
type entryRules struct {
	trees, links []string        // absolute
	symlinks     map[string]bool // symlink entries seen so far (absolute)
}

func newEntryRules(l layout) *entryRules {
	return &entryRules{trees: l.trees, links: l.links, symlinks: map[string]bool{}}
}

// name checks one entry or hard link name and returns it as an absolute path.
func (r *entryRules) name(what, n string) (string, error) {
	if !strings.HasPrefix(n, "./") {
		return "", fmt.Errorf("%s %q is not relative to / (\"./...\")", what, n)
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("%s %q contains \"..\"", what, n)
		}
	}
	abs := path.Clean("/" + strings.TrimPrefix(n, "./"))
	if !insideAny(abs, r.trees, true) && !contains(r.links, abs) {
		return "", fmt.Errorf("%s %q lies outside the backed-up paths", what, n)
	}
	for d := path.Dir(abs); d != "/"; d = path.Dir(d) {
		if r.symlinks[d] {
			return "", fmt.Errorf("%s %q lies below the symbolic link %q of the same archive", what, n, "."+d)
		}
	}
	return abs, nil
}

func (r *entryRules) check(h *tar.Header) error {
	abs, err := r.name("entry", h.Name)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeLink:
		if _, err := r.name("hard link target of "+h.Name+":", h.Linkname); err != nil {
			return err
		}
	case tar.TypeSymlink:
		r.symlinks[abs] = true
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("entry %q is a device node: refused (a restore would create it as root)", h.Name)
	}
	if contains(r.links, abs) && h.Typeflag != tar.TypeSymlink {
		return fmt.Errorf("entry %q should be the symbolic link the backup recorded", h.Name)
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
