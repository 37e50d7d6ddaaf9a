package modules

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Copy describes one file copied over Dest on a host by the user a command
// runs as (root under sudo), written as if a hostile user could write Dest's
// directory: see Script.
type Copy struct {
	Src, Dest string
	Mode      os.FileMode // permission bits, with setuid/setgid/sticky as 04000/02000/01000
	// Chown is "user", "user:group" or ":group" for the new file; "" leaves
	// it owned by the user running the script.
	Chown string
	// KeepOwner gives the new file the owner and group of the existing Dest
	// (when there is one and Chown is empty).
	KeepOwner bool
	// SrcOwner gives the new file Src's owner and group (an undo copy).
	SrcOwner bool
	// OwnSrc refuses a Src that is not a regular file with a single link
	// owned by the user running the script or by the user who ran sudo: a
	// staged or kept copy of ours, not something planted in its place.
	OwnSrc bool
	// SrcSHA256, when set, refuses a Src whose content is not this.
	SrcSHA256 string
}

// Script is the POSIX sh script doing the copy. The temporary file gets its
// name from mktemp inside the script (no argv shows it before it exists),
// is created with O_EXCL (set -C: never through a planted name) and mode
// 0600 (umask), is written, chowned, chmodded and fsynced only through its
// open descriptor (/proc/self/fd/3, which no rename can redirect), and is
// renamed over Dest with mv -T. A failure removes it and leaves Dest as it was.
func (c Copy) Script() string {
	q := ShellQuote
	dir, base := path.Split(c.Dest)
	if dir == "" {
		dir = "."
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "set -e; umask 077; exec 4< %s; ", q(c.Src))
	if c.OwnSrc {
		sb.WriteString(OwnFileCheck(4, c.Src))
	}
	if c.SrcSHA256 != "" {
		fmt.Fprintf(&sb, `set -- $(sha256sum /proc/self/fd/4); if [ "$1" != %s ]; then echo %s >&2; exit 1; fi; `,
			q(c.SrcSHA256), q(c.Src+": not the content recorded for it; not copied"))
	}
	fmt.Fprintf(&sb, `T=$(mktemp -u -p %s %s); set -C; exec 3> "$T"; set +C; trap 'rm -f -- "$T"' EXIT; cat <&4 >&3; `,
		q(path.Clean(dir)), q("."+base+".upgrader-XXXXXXXXXX"))
	switch {
	case c.Chown != "":
		fmt.Fprintf(&sb, "chown %s /proc/self/fd/3; ", q(c.Chown))
	case c.SrcOwner:
		sb.WriteString("chown --reference=/proc/self/fd/4 /proc/self/fd/3; ")
	case c.KeepOwner:
		fmt.Fprintf(&sb, "if [ -e %[1]s ]; then chown --reference=%[1]s /proc/self/fd/3; fi; ", q(c.Dest))
	}
	fmt.Fprintf(&sb, `chmod %04o /proc/self/fd/3; sync /proc/self/fd/3; exec 3>&- 4<&-; mv -T -f -- "$T" %s; trap - EXIT`, uint32(c.Mode)&0o7777, q(c.Dest))
	return sb.String()
}

// OwnFileCheck is a sh snippet that exits 1 unless the file open on
// descriptor fd is a regular file with one link owned by the user running
// it or by the user who ran sudo: a file we staged, not one planted in its
// place (a link to another file, a hard link).
func OwnFileCheck(fd int, name string) string {
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	return fmt.Sprintf(`set -- $(stat -L -c '%%h %%u' %[1]s); if ! [ -f %[1]s ] || [ "$1" != 1 ] || { [ "$2" != "$(id -u)" ] && [ "$2" != "${SUDO_UID:-}" ]; }; then echo %[2]s >&2; exit 1; fi; `,
		p, ShellQuote(name+": not a file of ours (replaced by another user?); not used"))
}
