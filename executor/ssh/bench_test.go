package ssh_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/modules"
)

// benchCmd is a short command that starts a process, like most probes.
const benchCmd = "stat -c %s /etc/passwd"

func hundred(b *testing.B, tgt modules.Target) { hundredAs(b, tgt, false) }

func hundredAs(b *testing.B, tgt modules.Target, sudo bool) {
	for i := range 100 {
		r, err := tgt.Run(context.Background(), modules.Command{Cmd: benchCmd, Sudo: sudo, Env: map[string]string{"TOKEN": "x"}})
		if err != nil || r.ExitCode != 0 {
			b.Fatalf("command %d: %v %v", i, r, err)
		}
	}
}

func targets(b *testing.B, names ...string) []modules.Target {
	bed := testbed.New(b, names...)
	var ts []modules.Target
	for _, n := range names {
		t, err := bed.Target(n)
		if err != nil {
			b.Fatal(err)
		}
		hundred(b, t) // warm: connection and shell up
		ts = append(ts, t)
	}
	return ts
}

// BenchmarkRun_100commands_1host: one op is 100 short commands in sequence.
func BenchmarkRun_100commands_1host(b *testing.B) {
	ts := targets(b, "h1")
	for b.Loop() {
		hundred(b, ts[0])
	}
}

// BenchmarkRun_100sudoCommands_1host: the same through sudo, the script
// read by sudo's shell on its stdin (never in argv).
func BenchmarkRun_100sudoCommands_1host(b *testing.B) {
	ts := targets(b, "h1")
	for b.Loop() {
		hundredAs(b, ts[0], true)
	}
}

// BenchmarkRun_100commands_4hosts: one op is 100 commands on each of 4 hosts at once.
func BenchmarkRun_100commands_4hosts(b *testing.B) {
	ts := targets(b, "h1", "h2", "h3", "h4")
	for b.Loop() {
		var wg sync.WaitGroup
		for _, t := range ts {
			wg.Add(1)
			go func() { defer wg.Done(); hundred(b, t) }()
		}
		wg.Wait()
	}
}

// pattern is an endless, incompressible-enough byte stream of n bytes.
type pattern struct{ n, off int64 }

var block = func() []byte {
	b := make([]byte, 1<<20)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	n := copy(b, block[p.off%int64(len(block)):])
	if rem := p.n - p.off; int64(n) > rem {
		n = int(rem)
	}
	p.off += int64(n)
	return n, nil
}

// BenchmarkWriteFile_512MiB_4hosts: one op writes 512 MiB to each of 4 hosts at once.
func BenchmarkWriteFile_512MiB_4hosts(b *testing.B) {
	const size = 512 << 20
	ts := targets(b, "h1", "h2", "h3", "h4")
	b.SetBytes(4 * size)
	for b.Loop() {
		var wg sync.WaitGroup
		for i, t := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := t.WriteFile(context.Background(), "/tmp/big", &pattern{n: size}, 0o644); err != nil {
					b.Error(fmt.Errorf("host %d: %w", i, err))
				}
			}()
		}
		wg.Wait()
	}
}
