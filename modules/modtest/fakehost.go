package modtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/upgrader-dev/upgrader/modules"
)

// FakeHost is an in-memory host for unit tests of plan decisions: files,
// directories, symlinks and canned probe results. Run and WriteFile change
// the memory only. Integration tests use real hosts from internal/testbed.
type FakeHost struct {
	Info    modules.HostInfo
	mu      sync.Mutex
	Files   map[string]FakeFile
	Links   map[string]string // path -> target
	Dirs    map[string]bool
	Probes  map[string]int    // command line -> exit code
	Outputs map[string]string // command line -> stdout
	Ran     []string          // commands given to Probe or Run
}

// FakeFile is one regular file of a FakeHost.
type FakeFile struct {
	Data []byte
	Mode os.FileMode
}

var _ modules.Target = (*FakeHost)(nil)

// NewFakeHost returns an empty host called name.
func NewFakeHost(name string) *FakeHost {
	return &FakeHost{Info: modules.HostInfo{Name: name, Address: "198.51.100.1", Port: 22, User: "deploy"},
		Files: map[string]FakeFile{}, Links: map[string]string{}, Dirs: map[string]bool{"/": true}, Probes: map[string]int{}, Outputs: map[string]string{}}
}

func (h *FakeHost) Host() modules.HostInfo { return h.Info }

// resolve follows every symlink in p, as open(2) does.
func (h *FakeHost) resolve(p string) string {
	p = h.resolveDir(p)
	for range 10 {
		t, ok := h.Links[p]
		if !ok {
			return p
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = h.resolveDir(path.Clean(t))
	}
	return p
}

// resolveDir follows symlinks in the directories of p, not in its last
// element, as lstat(2) does.
func (h *FakeHost) resolveDir(p string) string {
	p = path.Clean(p)
	if p == "/" {
		return p
	}
	return path.Join(h.resolve(path.Dir(p)), path.Base(p))
}

func (h *FakeHost) isDir(p string) bool {
	if h.Dirs[p] {
		return true
	}
	prefix := strings.TrimSuffix(p, "/") + "/"
	for f := range h.Files {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	for l := range h.Links {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (h *FakeHost) Stat(ctx context.Context, p string) (modules.FileInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = h.resolveDir(p)
	if t, ok := h.Links[p]; ok {
		fi := h.statLocked(h.resolve(p))
		fi.Exists, fi.IsLink, fi.LinkTarget = true, true, t
		return fi, nil
	}
	return h.statLocked(p), nil
}

func (h *FakeHost) statLocked(p string) modules.FileInfo {
	if f, ok := h.Files[p]; ok {
		return modules.FileInfo{Exists: true, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: time.Unix(0, 0)}
	}
	if h.isDir(p) {
		return modules.FileInfo{Exists: true, IsDir: true, Mode: fs.ModeDir | 0o755}
	}
	return modules.FileInfo{}
}

func (h *FakeHost) SHA256(ctx context.Context, p string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.Files[h.resolve(path.Clean(p))]
	if !ok {
		return "", nil
	}
	sum := sha256.Sum256(f.Data)
	return hex.EncodeToString(sum[:]), nil
}

func (h *FakeHost) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.Files[h.resolve(path.Clean(p))]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	d := f.Data
	if limit >= 0 && int64(len(d)) > limit {
		d = d[:limit]
	}
	return append([]byte(nil), d...), nil
}

// Probe answers from Probes; an unknown command exits 127.
func (h *FakeHost) Probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Ran = append(h.Ran, cmd.Cmd)
	code, ok := h.Probes[cmd.Cmd]
	if !ok {
		return modules.Result{ExitCode: 127, Stderr: []byte("fake host: no canned result for " + cmd.Cmd)}, nil
	}
	return modules.Result{ExitCode: code, Stdout: []byte(h.Outputs[cmd.Cmd])}, nil
}

func (h *FakeHost) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return h.Probe(ctx, cmd)
}

func (h *FakeHost) WriteFile(ctx context.Context, p string, r io.Reader, mode os.FileMode) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Files[path.Clean(p)] = FakeFile{Data: b, Mode: mode}
	return nil
}

func (h *FakeHost) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, fmt.Errorf("fake host cannot dial")
}

// Case is one plan test case read from a txtar file:
//
//	-- config.hcl --   the block under test
//	-- local/PATH --   files of the configuration directory; a PATH ending in
//	                   .tar.gz lists file names packed into a tar.gz (content: the name)
//	-- host/PATH --    files on the host (absolute PATH without the leading /)
//	-- host.json --    {"modes": {PATH: "0600"}, "links": {PATH: TARGET}, "dirs": [PATH],
//	                   "probes": {CMD: EXIT}, "outputs": {CMD: STDOUT}}
//	-- want --         "key: value" lines the test compares (change, summary, reason, detail ...)
type Case struct {
	Name   string
	Dir    string // configuration directory with the local/ files
	Config []byte
	Host   *FakeHost
	Want   map[string][]string // key -> values (a key may repeat)
}

// LoadCase reads a txtar case; local files go to a temp dir removed when t ends.
func LoadCase(t testing.TB, file string) *Case {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := &Case{Name: strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), Dir: t.TempDir(),
		Host: NewFakeHost("web"), Want: map[string][]string{}}
	var meta struct {
		Modes   map[string]string `json:"modes"`
		Links   map[string]string `json:"links"`
		Dirs    []string          `json:"dirs"`
		Probes  map[string]int    `json:"probes"`
		Outputs map[string]string `json:"outputs"`
	}
	for _, f := range ar.Files {
		switch {
		case f.Name == "config.hcl":
			c.Config = f.Data
		case f.Name == "host.json":
			if err := json.Unmarshal(f.Data, &meta); err != nil {
				t.Fatalf("%s: host.json: %v", file, err)
			}
		case f.Name == "want":
			for _, line := range strings.Split(string(f.Data), "\n") {
				k, v, ok := strings.Cut(line, ":")
				if ok {
					c.Want[strings.TrimSpace(k)] = append(c.Want[strings.TrimSpace(k)], strings.TrimSpace(v))
				}
			}
		case strings.HasPrefix(f.Name, "local/"):
			p := filepath.Join(c.Dir, filepath.FromSlash(strings.TrimPrefix(f.Name, "local/")))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			data := f.Data
			if strings.HasSuffix(p, ".tar.gz") {
				data = TarGz(t, strings.Fields(string(f.Data))...)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(f.Name, "host/"):
			c.Host.Files["/"+strings.TrimPrefix(f.Name, "host/")] = FakeFile{Data: f.Data, Mode: 0o644}
		default:
			t.Fatalf("%s: unknown section %q", file, f.Name)
		}
	}
	for p, m := range meta.Modes {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			t.Fatalf("%s: mode %q: %v", file, m, err)
		}
		f := c.Host.Files[p]
		f.Mode = os.FileMode(n)
		c.Host.Files[p] = f
	}
	for p, l := range meta.Links {
		c.Host.Links[p] = l
	}
	for _, d := range meta.Dirs {
		c.Host.Dirs[d] = true
	}
	for cmd, code := range meta.Probes {
		c.Host.Probes[cmd] = code
	}
	for cmd, out := range meta.Outputs {
		c.Host.Outputs[cmd] = out
	}
	return c
}

// PlanEnv returns a plan-time Env holding the case's host as "web".
func (c *Case) PlanEnv() *Env {
	return &Env{ID: "run1", PlanOnly: true, Targets: map[string]modules.Target{"web": c.Host}}
}

// CheckPlan compares a plan with the case's want lines: change, summary,
// reason and undo are compared exactly; each "detail" value must appear in
// Detail, each "no-detail" value must not.
func (c *Case) CheckPlan(t testing.TB, p *modules.Plan) {
	t.Helper()
	exact := map[string]string{"change": string(p.Change), "summary": p.Summary, "reason": p.Reason, "undo": p.Undo}
	for k, got := range exact {
		for _, want := range c.Want[k] {
			if got != want {
				t.Errorf("%s: %s = %q, want %q", c.Name, k, got, want)
			}
		}
	}
	for _, want := range c.Want["detail"] {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("%s: detail lacks %q:\n%s", c.Name, want, p.Detail)
		}
	}
	for _, bad := range c.Want["no-detail"] {
		if strings.Contains(p.Detail, bad) {
			t.Errorf("%s: detail holds %q:\n%s", c.Name, bad, p.Detail)
		}
	}
	if len(c.Want["change"]) == 0 {
		t.Errorf("%s: no `change:` line in want", c.Name)
	}
}

// TarGz returns a gzip-compressed tar holding the named files, each
// containing its own name and a newline; "dir/" names make directories.
func TarGz(t testing.TB, names ...string) []byte {
	t.Helper()
	files := make([]TarFile, len(names))
	for i, n := range names {
		files[i] = TarFile{Name: n, Body: n + "\n"}
	}
	return TarGzFiles(t, files...)
}

// TarFile is one entry for TarGzFiles; Mode 0 means 0644 (0755 for directories).
type TarFile struct {
	Name, Body string
	Mode       int64
}

// TarGzFiles returns a gzip-compressed tar of files, in order.
func TarGzFiles(t testing.TB, files ...TarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if strings.HasSuffix(f.Name, "/") {
			hdr.Size, hdr.Typeflag = 0, tar.TypeDir
			if f.Mode == 0 {
				hdr.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
