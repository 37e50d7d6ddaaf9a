package backup

import (
	"fmt"
	"path"
	"strings"

	"github.com/upgrader-dev/upgrader/modules"
)

// member is the archive member name of an absolute path. Archives are made
// from "/" with "./" names so that no name can start with a dash.
func member(abs string) string {
	return "./" + strings.TrimPrefix(path.Clean(abs), "/")
}

// findExcludes returns a find(1) expression matching the exclude patterns:
// a pattern with a slash matches the whole absolute path ("/opt/app/cache",
// "*/tmp/*"), one without a slash matches a file's base name ("*.tmp").
// It returns "" when there are none.
func findExcludes(exclude []string) string {
	var terms []string
	for _, p := range exclude {
		switch {
		case strings.HasPrefix(p, "/"):
			terms = append(terms, "-path "+modules.ShellQuote("."+p))
		case strings.Contains(p, "/"):
			terms = append(terms, "-path "+modules.ShellQuote("*/"+p))
		default:
			terms = append(terms, "-name "+modules.ShellQuote(p))
		}
	}
	if len(terms) == 0 {
		return ""
	}
	return `\( ` + strings.Join(terms, " -o ") + ` \)`
}

// createScript lists the paths minus the excludes with find and archives
// exactly that list with tar, so that restore can remove exactly what a
// backup covers with the same find expression. paths are a layout's
// members: find does not follow links, so a link path is archived as the
// link, and what it resolved to is among the paths. Each link must still
// resolve as it did when the layout was made. POSIX sh has no pipefail:
// both exit codes travel on fd 3 and are checked at the end.
func createScript(paths, exclude []string, links []Link) string {
	var b strings.Builder
	b.WriteString("cd / || exit 100\n")
	for _, l := range links {
		q := modules.ShellQuote(l.Path)
		b.WriteString("[ \"$(readlink -f -- " + q + ")\" = " + modules.ShellQuote(l.Target) + " ] || { echo \"upgrader: \"" + q +
			"\" no longer resolves to \"" + modules.ShellQuote(l.Target) + "\" (changed while it was backed up)\" >&2; exit 104; }\n")
	}
	var members []string
	for _, p := range paths {
		members = append(members, modules.ShellQuote(member(p)))
	}
	b.WriteString("for p in " + strings.Join(members, " ") + "; do\n")
	b.WriteString("  if [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then echo \"upgrader: ${p#.} does not exist\" >&2; exit 101; fi\n")
	b.WriteString("done\n")
	find := "find " + strings.Join(members, " ")
	if ex := findExcludes(exclude); ex != "" {
		find += " " + ex + " -prune -o -print0"
	} else {
		find += " -print0"
	}
	b.WriteString("exec 4>&1\n")
	b.WriteString("st=$( { { " + find + "; echo \"f$?\" >&3; } | tar --null --no-recursion -T - -cpf - --numeric-owner >&4; echo \"t$?\" >&3; } 3>&1 )\n")
	// tar exits 1 when a file changed while it was read: the archive is
	// still well-formed, so that is a warning, not a failure.
	b.WriteString("case \"$st\" in\n")
	b.WriteString("  *f0*) case \"$st\" in *t0*) exit 0;; *t1*) echo 'upgrader: some files changed while they were read' >&2; exit 0;; esac;;\n")
	b.WriteString("esac\n")
	b.WriteString("echo \"upgrader: archiving failed (find/tar status: $(echo $st))\" >&2\nexit 102\n")
	return b.String()
}

// sizeScript estimates the bytes a backup of paths will read: du -sb without
// the excludes, as an over-estimate is the safe side of a space check. Its
// last output line is "TOTAL\ttotal".
func sizeScript(paths []string) string {
	var members []string
	for _, p := range paths {
		members = append(members, modules.ShellQuote(member(p)))
	}
	return "cd / && exec du -sbc " + strings.Join(members, " ")
}

// restoreScript removes what a backup of paths covers (everything under them
// except what the excludes match), keeping the directories given in paths
// themselves, then extracts just those paths from the tar stream on stdin.
// Excluded files (caches, uploads) are kept: a restore must not destroy
// what was never backed up.
func restoreScript(paths, exclude []string) string {
	var b strings.Builder
	b.WriteString("cd / || exit 100\n")
	var qs []string
	for _, p := range paths {
		qs = append(qs, modules.ShellQuote(member(p)))
	}
	prune := ""
	if ex := findExcludes(exclude); ex != "" {
		prune = ex + " -prune -o "
	}
	b.WriteString("for p in " + strings.Join(qs, " ") + "; do\n")
	b.WriteString("  if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then\n")
	b.WriteString("    find \"$p\" -mindepth 1 " + prune + "! -type d -exec rm -f -- {} + || exit 101\n")
	// Children sort after their parents, so reverse order empties a
	// directory before its parent is tried; directories that still hold
	// excluded files stay.
	b.WriteString("    find \"$p\" -mindepth 1 " + prune + "-type d -print0 | sort -rz | xargs -0r rmdir --ignore-fail-on-non-empty -- || exit 102\n")
	b.WriteString("  elif [ -e \"$p\" ] || [ -L \"$p\" ]; then\n")
	b.WriteString("    rm -f -- \"$p\" || exit 103\n")
	b.WriteString("  fi\n")
	b.WriteString("done\n")
	// Only the members asked for are extracted, named literally: whatever
	// else a stream holds stays in it (verification refuses such archives
	// before this runs; this is the second line).
	x := "exec tar -xpf - --numeric-owner --no-wildcards -C / -- " + strings.Join(qs, " ")
	b.WriteString(x + "\n")
	return b.String()
}

// scriptFailure turns a script's exit code and stderr into an error text.
func scriptFailure(what string, code int, stderr []byte) error {
	msg := strings.TrimSpace(string(stderr))
	if len(msg) > 2000 {
		msg = msg[len(msg)-2000:]
	}
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Errorf("%s exited %d: %s", what, code, msg)
}
