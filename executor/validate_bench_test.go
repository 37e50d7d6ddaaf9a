package executor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/lang"
)

// writeBigConfig writes a configuration of hosts hosts and 10 nodes per
// host (a backup, a chain of 7 steps, 2 checks) in phases of 100 hosts,
// each phase after the one before: 1,000 hosts give 10,000 nodes.
func writeBigConfig(tb testing.TB, dir string, hosts int) {
	tb.Helper()
	var h strings.Builder
	h.WriteString("variable \"version\" {\n  default = \"2.0.0\"\n}\n\nconnection {\n  user = \"deploy\"\n}\n\n")
	for i := 0; i < hosts; i++ {
		fmt.Fprintf(&h, "host \"h%04d\" {\n  address = \"198.51.%d.%d\"\n  labels  = { group = \"g%02d\" }\n}\n\n", i, 100+i/250, i%250+1, i/100)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.hcl"), []byte(h.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	for p := 0; p*100 < hosts; p++ {
		var b strings.Builder
		fmt.Fprintf(&b, "phase \"g%02d\" {\n", p)
		if p > 0 {
			fmt.Fprintf(&b, "  depends_on = [phase.g%02d]\n", p-1)
		}
		for i := p * 100; i < (p+1)*100 && i < hosts; i++ {
			fmt.Fprintf(&b, "\n  backup \"h%04d\" {\n    host  = host.h%04d\n    paths = [\"/opt/app\", \"/etc/app\"]\n  }\n", i, i)
			for s := 0; s < 7; s++ {
				dep := fmt.Sprintf("backup.h%04d", i)
				if s > 0 {
					dep = fmt.Sprintf("step.h%04d_%d", i, s-1)
				}
				fmt.Fprintf(&b, "\n  step \"h%04d_%d\" {\n    host       = host.h%04d\n    depends_on = [%s]\n    run {\n      command = \"echo ${var.version} step %d on ${host.h%04d.address}\"\n    }\n  }\n", i, s, i, dep, s, i)
			}
			fmt.Fprintf(&b, "\n  check \"h%04d_http\" {\n    when = step.h%04d_6.changed\n    http {\n      url = \"http://${host.h%04d.address}:8080/health\"\n    }\n  }\n", i, i, i)
			fmt.Fprintf(&b, "\n  check \"h%04d_api\" {\n    depends_on = [check.h%04d_http]\n    http {\n      url = \"http://${host.h%04d.address}:8080/api\"\n    }\n  }\n", i, i, i)
		}
		b.WriteString("}\n")
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("phase%02d.hcl", p)), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func loadAndValidateBig(tb testing.TB, dir string) *lang.Config {
	reg := testRegistry()
	cfg, diags := lang.Load(dir, executor.Schemas(reg), lang.Options{Env: map[string]string{}})
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	if d := executor.Validate(cfg, reg); d.HasErrors() {
		tb.Fatal(d.Error())
	}
	return cfg
}

// BenchmarkValidate_1000hosts10000nodes is `upgrader validate` (load, decode,
// graph, interlock, module validators) of a 1,000-host, 10,000-node
// configuration. cpu-s/op is the CPU time it takes; live-MiB is the heap still in use after a GC with the
// loaded configuration alive.
func BenchmarkValidate_1000hosts10000nodes(b *testing.B) {
	dir := b.TempDir()
	writeBigConfig(b, dir, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var cfg *lang.Config
	for i := 0; i < b.N; i++ {
		cfg = loadAndValidateBig(b, dir)
	}
	b.StopTimer()
	// CPU seconds (all threads, GC included): on a shared machine wall time
	// says more about the neighbours than about upgrader.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	if len(cfg.Nodes) != 10000 || len(cfg.Hosts) != 1000 {
		b.Fatalf("%d nodes, %d hosts", len(cfg.Nodes), len(cfg.Hosts))
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "live-MiB")
	runtime.KeepAlive(cfg)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWriteBigConfig writes the benchmark's configuration into
// $UPGRADER_BIGCONFIG_DIR, to measure the binary itself:
// /usr/bin/time -v upgrader validate DIR.
func TestWriteBigConfig(t *testing.T) {
	dir := os.Getenv("UPGRADER_BIGCONFIG_DIR")
	if dir == "" {
		t.Skip("set UPGRADER_BIGCONFIG_DIR to write the benchmark configuration")
	}
	writeBigConfig(t, dir, 1000)
}

func TestValidate_bigConfigSmall(t *testing.T) {
	// The generator itself, on 150 hosts: a valid configuration with
	// phase order feeding the interlock.
	dir := t.TempDir()
	writeBigConfig(t, dir, 150)
	cfg := loadAndValidateBig(t, dir)
	n := cfg.Nodes["backup.h0100"]
	if len(n.DependsOn) == 0 {
		t.Errorf("backup.h0100 (entry of phase g01) has no phase-order dependencies")
	}
}
