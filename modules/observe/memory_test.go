package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// cannedHost answers the sampling script without running it: fixed /proc
// text and a log that grows by two lines (one matching) per sample. It lets
// a test take the 43,200 samples of a 72-hour window in seconds.
type cannedHost struct {
	*localHost
	mu   sync.Mutex
	size int64
	n    int
}

var (
	nonceRe = regexp.MustCompile(`@@end ([0-9a-f]+)`)
	offRe   = regexp.MustCompile(`then o=(\d+);`)
)

func (h *cannedHost) Probe(ctx context.Context, c modules.Command) (modules.Result, error) {
	h.mu.Lock()
	h.n++
	n, start := h.n, h.size
	add := fmt.Sprintf("2026-11-28 INFO request %d served\n2026-11-28 ERROR request %d failed\n", n, n)
	h.size += int64(len(add))
	size := h.size
	h.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "@@stat\ncpu  %d 0 %d %d 0 0 0 0 0 0\n", 1000+n*3, 500+n, 9000+n*20)
	b.WriteString("@@mem\nMemTotal: 16318180\nMemAvailable: 12000000\n@@load\n0.52 0.40 0.33 1/200 4242\n")
	b.WriteString("@@df 0 1\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000 400 600 40% /\n/dev/vda 1000 400 600 40% /\n")
	fmt.Fprintf(&b, "@@log 0 77 %d\n", size)
	if m := offRe.FindStringSubmatch(c.Cmd); m != nil {
		off, _ := strconv.ParseInt(m[1], 10, 64)
		if off != start {
			return modules.Result{}, fmt.Errorf("cursor at %d, want %d", off, start)
		}
		nonce := nonceRe.FindStringSubmatch(c.Cmd)[1]
		fmt.Fprintf(&b, "@@data 0 cur %d\n%s\n@@end %s\n", off, add, nonce)
	}
	b.WriteString("@@done\n")
	if _, err := io.WriteString(c.Stdout, b.String()); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{}, nil
}

// TestWindow_memoryFlat takes the samples of a 72-hour window at a 1-minute
// interval on 10 hosts (4,320 rounds, 43,200 samples, a growing log on each
// host) and checks that the heap does not grow with them: samples go to
// metrics.jsonl, not to memory.
func TestWindow_memoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	const hosts, rounds = 10, 72 * 60
	env := &modtest.Env{ID: "run1", Dir: t.TempDir(), Targets: map[string]modules.Target{}}
	var names, refs []string
	for i := 1; i <= hosts; i++ {
		n := fmt.Sprintf("h%d", i)
		names, refs = append(names, n), append(refs, "host."+n)
		env.Targets[n] = &cannedHost{localHost: newLocalHost(n)}
	}
	cfg, s := mustSettings(t, `observe "soak" {
  duration           = "72h"
  interval           = "1m"
  hosts              = [`+strings.Join(refs, ", ")+`]
  max_cpu_percent    = 100
  max_memory_percent = 95
  max_disk_percent   = 95
  max_load           = 16
  breach_for         = "5m"
  log {
    path        = "/var/log/app/app.log"
    pattern     = "ERROR"
    max_matches = 1000000
  }
}`, names, nil)
	w, err := newWindow(&modules.Request{Config: cfg, Node: "observe.soak", Index: -1, Env: env}, s)
	if err != nil {
		t.Fatal(err)
	}
	defer w.out.Close()
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var at500 uint64
	for i := 1; i <= rounds; i++ {
		if err := w.round(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if i == 500 {
			at500 = heap()
		}
	}
	end := heap()
	fi, _ := os.Stat(filepath.Join(env.Dir, "runs", "run1", "metrics.jsonl"))
	cp, _ := json.Marshal(w.st)
	t.Logf("heap after 500 rounds %d KiB, after %d rounds (%d samples) %d KiB; metrics.jsonl %d MiB; state checkpoint %d B per interval",
		at500>>10, rounds, w.st.Samples, end>>10, fi.Size()>>20, len(cp))
	if w.st.Samples != hosts*rounds || w.st.Matches["h1|0"] != rounds-1 { // the first sample only notes where the log ends
		t.Errorf("samples %d, matches on h1 %d", w.st.Samples, w.st.Matches["h1|0"])
	}
	if end > at500+256<<10 {
		t.Errorf("heap grew from %d KiB to %d KiB", at500>>10, end>>10)
	}
}
