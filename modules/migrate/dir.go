package migrate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Migration is one version of a golang-migrate directory.
type Migration struct {
	Version uint64
	Name    string // "add_email"
	Up      string // file name, relative to the directory
	Down    string
}

// Label is "0003_add_email" as the files spell it.
func (m Migration) Label() string { return strings.TrimSuffix(m.Up, ".up.sql") }

// Problem is something wrong in a migration directory, naming the file.
type Problem struct {
	File    string // "" when about the directory
	Summary string
	Detail  string
}

var fileRE = regexp.MustCompile(`^([0-9]+)_(.+)\.(up|down)\.sql$`)

// timestampVersions: versions this large are dates (20240131120000); gaps
// between them are normal, so the gap rule applies only to sequence numbers.
const timestampVersions = 1_000_000_000

// ReadDir reads a golang-migrate directory: VERSION_name.up.sql and
// VERSION_name.down.sql. It reports duplicate versions, a missing down (or
// up) file, file names not in that layout, and a gap in sequence numbers.
func ReadDir(dir string) ([]Migration, []Problem) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []Problem{{Summary: "Cannot read migration directory", Detail: err.Error()}}
	}
	byVersion := map[uint64]*Migration{}
	var probs []Problem
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		m := fileRE.FindStringSubmatch(name)
		if m == nil {
			probs = append(probs, Problem{File: name, Summary: "Migration file name not in golang-migrate layout",
				Detail: fmt.Sprintf("%s: migration files are named VERSION_name.up.sql and VERSION_name.down.sql (e.g. 0003_add_email.up.sql).", name)})
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			probs = append(probs, Problem{File: name, Summary: "Migration version out of range", Detail: fmt.Sprintf("%s: %v", name, err)})
			continue
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		slot := &mig.Up
		if m[3] == "down" {
			slot = &mig.Down
		}
		if *slot != "" {
			probs = append(probs, Problem{File: name, Summary: fmt.Sprintf("Duplicate migration version %d", v),
				Detail: fmt.Sprintf("%s and %s both are the %s migration of version %d; each version must be used once.", *slot, name, m[3], v)})
			continue
		}
		*slot = name
	}
	var out []Migration
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for _, m := range out {
		switch {
		case m.Up == "":
			probs = append(probs, Problem{File: m.Down, Summary: "Down migration without an up migration",
				Detail: fmt.Sprintf("%s has no matching %d_%s.up.sql.", m.Down, m.Version, m.Name)})
		case m.Down == "":
			probs = append(probs, Problem{File: m.Up, Summary: "Missing down migration",
				Detail: fmt.Sprintf("%s has no matching %s.down.sql: undo needs one for every version.", m.Up, m.Label())})
		}
	}
	if len(out) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{Summary: "No migrations", Detail: fmt.Sprintf("%s holds no VERSION_name.up.sql files.", dir)})
	}
	for i := 1; i < len(out); i++ {
		prev, cur := out[i-1], out[i]
		if cur.Version < timestampVersions && cur.Version != prev.Version+1 {
			missing := fmt.Sprintf("version %d", prev.Version+1)
			if cur.Version-prev.Version > 2 {
				missing = fmt.Sprintf("versions %d to %d", prev.Version+1, cur.Version-1)
			}
			probs = append(probs, Problem{File: fileOf(cur), Summary: "Gap in migration versions",
				Detail: fmt.Sprintf("%s is missing between %s and %s: a migration was deleted or misnumbered.", missing, fileOf(prev), fileOf(cur))})
		}
	}
	return out, probs
}

func fileOf(m Migration) string {
	if m.Up != "" {
		return m.Up
	}
	return m.Down
}

// readFile reads one migration file.
func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
