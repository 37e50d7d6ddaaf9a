package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeBackup writes a complete backup (manifest and a small archive file)
// of name in run, created at t. It is only listed and pruned, never read.
func fakeBackup(t *testing.T, stateDir, run, name string, at time.Time) {
	t.Helper()
	dir := Dir(stateDir, run, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, hostArchive), []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: 1, ID: run + "/" + name, Run: run, Name: name, Kind: KindHost, Host: "web",
		Paths: []string{"/opt/app"}, Archive: hostArchive, SHA256: "00", ArchiveBytes: 5, CreatedAt: at}
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// TestPrune_keepsNewestAndLastSuccessful: keep_runs = 2 keeps the current
// run and the newest other one, and always the latest successful run's
// backup, however old; other names are left alone.
func TestPrune_keepsNewestAndLastSuccessful(t *testing.T) {
	state := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		fakeBackup(t, state, fmt.Sprintf("r%d", i), "web", t0.Add(time.Duration(i)*time.Hour))
	}
	fakeBackup(t, state, "r1", "db", t0)
	// An incomplete backup left by a cut run is pruned like the others.
	os.MkdirAll(Dir(state, "r3b", "web"), 0o700)
	os.Chtimes(Dir(state, "r3b", "web"), t0.Add(3*time.Hour+time.Minute), t0.Add(3*time.Hour+time.Minute))
	// r4 is the latest successful run (Env.ProtectedRun; journal.LastDone finds it).

	removed, err := Prune(state, "web", "r6", "r4", 2)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"r1/web", "r2/web", "r3/web", "r3b/web"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	all, _ := List(state)
	if got, want := ids(all), []string{"r1/db", "r4/web", "r5/web", "r6/web"}; !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(state, backupsDir, "r3")); !os.IsNotExist(err) {
		t.Errorf("the emptied run directory r3 is still there")
	}
	if _, err := os.Stat(filepath.Join(state, backupsDir, "r1")); err != nil {
		t.Errorf("r1 still holds db: %v", err)
	}
}

// TestPrune_neverLastSuccessful: with keep_runs = 1 the latest successful
// run's backup survives next to the current one.
func TestPrune_neverLastSuccessful(t *testing.T) {
	state := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		fakeBackup(t, state, fmt.Sprintf("r%d", i), "web", t0.Add(time.Duration(i)*time.Hour))
	}
	removed, err := Prune(state, "web", "r3", "r1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"r2/web"}) {
		t.Errorf("removed %v, want [r2/web]", removed)
	}
}

// TestPrune_incompleteDoesNotCount: a newer incomplete backup neither uses
// one of keep_runs nor survives.
func TestPrune_incompleteDoesNotCount(t *testing.T) {
	state := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fakeBackup(t, state, "r1", "web", t0.Add(time.Hour))
	os.MkdirAll(Dir(state, "r2", "web"), 0o700)
	fakeBackup(t, state, "r3", "web", t0.Add(3*time.Hour))
	removed, err := Prune(state, "web", "r3", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"r2/web"}) {
		t.Errorf("removed %v, want [r2/web]", removed)
	}
}

func TestList_states(t *testing.T) {
	state := t.TempDir()
	if es, err := List(state); err != nil || len(es) != 0 {
		t.Fatalf("empty state: %v %v", es, err)
	}
	t0 := time.Now().Add(-time.Hour).UTC()
	fakeBackup(t, state, "r1", "ok", t0)
	fakeBackup(t, state, "r1", "noarchive", t0)
	os.Remove(filepath.Join(Dir(state, "r1", "noarchive"), hostArchive))
	os.MkdirAll(Dir(state, "r1", "cut"), 0o700)
	os.WriteFile(filepath.Join(Dir(state, "r1", "cut"), hostArchive+tmpSuffix), make([]byte, 100), 0o600)
	os.MkdirAll(Dir(state, "r1", "garbled"), 0o700)
	os.WriteFile(filepath.Join(Dir(state, "r1", "garbled"), manifestName), []byte("{"), 0o600)
	es, err := List(state)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range es {
		got[e.Name] = e
	}
	if e := got["ok"]; !e.Complete() || e.Problem != "" || e.Size != 5 || !e.Time.Equal(t0) {
		t.Errorf("ok: %+v", e)
	}
	if e := got["noarchive"]; !strings.Contains(e.Problem, "missing") {
		t.Errorf("noarchive: %+v", e)
	}
	if e := got["cut"]; e.Complete() || e.Problem != "incomplete: no manifest" || e.Size != 100 {
		t.Errorf("cut: %+v", e)
	}
	if e := got["garbled"]; e.Complete() || !strings.Contains(e.Problem, "manifest") {
		t.Errorf("garbled: %+v", e)
	}
	if _, _, err := VerifyDir(t.Context(), Dir(state, "r1", "cut")); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("verify of an incomplete backup: %v", err)
	}
}

func TestIDDir_refusesEscapes(t *testing.T) {
	for _, id := range []string{"../x/y", "r1/../../etc", "r1", "/abs/x", "r1/", "r1/a/b", "./x"} {
		if _, err := IDDir("/state", id); err == nil {
			t.Errorf("IDDir(%q) accepted", id)
		}
	}
	if d, err := IDDir("/state", "r1/web"); err != nil || d != "/state/backups/r1/web" {
		t.Errorf("IDDir(r1/web) = %q %v", d, err)
	}
}

// FuzzReadManifest: no input panics the manifest reader, and what it
// accepts names a plain archive file in the backup's directory.
func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"archive":"archive.tar.zst","sha256":"ab"}`))
	f.Add([]byte(`{"archive":"../../etc/passwd","sha256":"ab"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, manifestName), data, 0o600)
		m, err := ReadManifest(dir)
		if err == nil && (m.Archive != filepath.Base(m.Archive) || m.Archive == "." || m.Archive == "..") {
			t.Errorf("accepted archive name %q", m.Archive)
		}
	})
}
