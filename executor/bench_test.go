package executor

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/journal"
)

// BenchmarkApply_noopNodes measures the executor's own overhead per node:
// the dag walk, the fsynced journal (node_started, node_finished per node)
// and the view events, on 10,000 no-op nodes in 1,000 chains of 10, at the
// default -parallelism (10). It reports ms/node, fsyncs/node, and the
// latency of one bare append+fsync on the same disk measured alongside,
// since the journal's fsyncs dominate and the disk is shared.
func BenchmarkApply_noopNodes(b *testing.B) {
	const nodes, chain = 10000, 10
	var src strings.Builder
	for i := 0; i < nodes; i++ {
		fmt.Fprintf(&src, "noop \"n%05d\" {\n", i)
		if i%chain != 0 {
			fmt.Fprintf(&src, "  depends_on = [noop.n%05d]\n", i-1)
		}
		src.WriteString("}\n")
	}
	w := newWorld()
	cfg := w.load(b, src.String())
	events := 0
	var syncs uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		opts := Options{Config: cfg, Registry: w.reg, StateDir: filepath.Join(b.TempDir(), ".upgrader"),
			Observer: func(Event) { events++ }, Log: io.Discard}
		sum, err := Apply(context.Background(), opts)
		if err != nil || sum.Outcome != OutcomeDone {
			b.Fatalf("%v %+v", err, sum)
		}
		syncs += atomic.LoadUint64(&lastSyncs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*nodes), "ms/node")
	b.ReportMetric(float64(syncs)/float64(b.N*nodes), "fsyncs/node")
	b.ReportMetric(float64(events)/float64(b.N*nodes), "events/node")
	b.ReportMetric(bareFsync(b), "bare-fsync-ms")
}

// bareFsync is the mean latency of 200 one-line append+fsync on the disk of b.TempDir().
func bareFsync(b *testing.B) float64 {
	w, _, err := journal.Create(filepath.Join(b.TempDir(), "bare.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	for i := 0; i < 200; i++ {
		if err := w.Append(journal.Event{Type: journal.NodeStarted, Node: "noop.x"}); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / 200
}
