package backup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// benchTree fills /opt/bench on a test host with about MB megabytes of mixed
// files: 70% real files copied from /usr/share (text, small files, links)
// and 30% incompressible data in files of 64 KiB to 8 MiB. deploy owns it.
const benchTree = `set -e
mb=%d
rm -rf /opt/bench; mkdir -p /opt/bench/share /opt/bench/data
want=$((mb * 1024 * 1024 * 7 / 10))
for d in /usr/share/*; do
  cp -a "$d" /opt/bench/share/ 2>/dev/null || true
  [ "$(du -sb /opt/bench/share | cut -f1)" -ge "$want" ] && break
done
left=$((mb * 1024 * 1024 - $(du -sb /opt/bench/share | cut -f1)))
i=0
while [ "$left" -gt 0 ]; do
  sz=$(( (65536 << (i %% 8)) ))
  [ "$sz" -gt "$left" ] && sz=$left
  head -c "$sz" /dev/urandom > /opt/bench/data/blob$i
  left=$((left - sz)); i=$((i + 1))
done
chown -R deploy:deploy /opt/bench
du -sb /opt/bench | cut -f1
`

// peakRSS samples this process's resident set size until stop is called.
func peakRSS() (stop func() int64) {
	var peak int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if rss := currentRSS(); rss > peak {
				peak = rss
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(done); wg.Wait(); return peak }
}

func currentRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkBackup compares, side by side, a backup of a directory of mixed
// files from a test host (stream over SSH, zstd, read-back verification,
// manifest) with `ssh host tar -cf - DIR | zstd > file`. BACKUP_BENCH_MB sets
// the size (default 1024). Metrics: MB/s, and peak-RSS-MiB of this process
// during the backup (constant whatever the size).
//
//	go test -run '^$' -bench Backup -benchtime 3x ./modules/backup/
func BenchmarkBackup(b *testing.B) {
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("BACKUP_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	bed := testbed.New(b, "bench")
	h := bed.Host("bench")
	ctx := context.Background()
	out, err := h.Exec(ctx, fmt.Sprintf(benchTree, mb))
	if err != nil {
		b.Fatal(err)
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	tg, err := bed.Target("bench")
	if err != nil {
		b.Fatal(err)
	}
	dest := b.TempDir()
	bk := &Backup{}
	var archiveSize, baselineSize int64
	cfg := decode(b, bk, `backup {
  host  = host.web
  paths = ["/opt/bench"]
}`)
	ours := func(i int) (int64, error) {
		env := &modtest.Env{ID: fmt.Sprintf("r%d", i), Dir: dest, Targets: map[string]modules.Target{"web": tg}}
		debug.FreeOSMemory() // measure from what the process needs, not earlier garbage
		stop := peakRSS()
		o, err := bk.Apply(ctx, &modules.Request{Config: cfg, Node: "backup.bench", Env: env, Log: &bytes.Buffer{}})
		if err == nil {
			fi, _ := os.Stat(o.Outputs["archive"].AsString())
			archiveSize = fi.Size()
		}
		return stop(), err
	}
	file := filepath.Join(dest, "baseline.tar.zst")
	sshCmd := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o BatchMode=yes -p %d %s@%s",
		h.KeyFile, h.KnownHostsFile, h.Port, h.User, h.Address)
	baseline := func() error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", sshCmd+" tar -cf - -C / opt/bench | zstd -q > "+file)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		fi, err := os.Stat(file)
		if err == nil {
			baselineSize = fi.Size()
		}
		return err
	}
	clean := func() {
		os.RemoveAll(filepath.Join(dest, backupsDir))
		os.Remove(file)
	}

	// Each iteration runs both, in alternating order, so that the load of a
	// shared machine falls on both alike; ratio is upgrader / baseline.
	b.Run("side_by_side", func(b *testing.B) {
		b.SetBytes(2 * size)
		var tOurs, tBase time.Duration
		var peak int64
		debug.FreeOSMemory()
		base := currentRSS()
		for i := 0; i < b.N; i++ {
			for j := 0; j < 2; j++ {
				start := time.Now()
				if (i+j)%2 == 0 {
					p, err := ours(i)
					if err != nil {
						b.Fatal(err)
					}
					tOurs += time.Since(start)
					peak = max(peak, p)
				} else {
					if err := baseline(); err != nil {
						b.Fatal(err)
					}
					tBase += time.Since(start)
				}
				b.StopTimer()
				clean()
				b.StartTimer()
			}
		}
		b.ReportMetric(tOurs.Seconds()/float64(b.N), "upgrader-s/op")
		b.ReportMetric(tBase.Seconds()/float64(b.N), "ssh+zstd-s/op")
		b.ReportMetric(float64(tOurs)/float64(tBase), "ratio")
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(base)/(1<<20), "start-RSS-MiB")
		b.ReportMetric(float64(size)/(1<<20), "data-MiB")
		b.ReportMetric(float64(archiveSize)/(1<<20), "archive-MiB")
		b.ReportMetric(float64(baselineSize)/(1<<20), "ssh+zstd-file-MiB")
	})
}
