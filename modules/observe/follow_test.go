package observe

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFollow runs each testdata/follow case: a sequence of changes to a real
// log file and samples taken with the real sampling script, each sample
// checking the matching lines it read.
func TestFollow(t *testing.T) {
	eachCase(t, "testdata/follow/*.txt", func(t *testing.T, src []byte, _ map[string][]byte) {
		runFollowCase(t, string(src))
	})
}

func runFollowCase(t *testing.T, src string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newLocalHost("local")
	var (
		re      *regexp.Regexp
		capB    int64 = readCap
		cur     logCursor
		started bool
		last    logResult
	)
	for n, line := range strings.Split(src, "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		args, err := unquoteArgs(line)
		if err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		at := func(f string, a ...any) {
			t.Helper()
			t.Fatalf("line %d (%s): "+f, append([]any{n + 1, line}, a...)...)
		}
		switch args[0] {
		case "pattern":
			re = regexp.MustCompile(args[1])
		case "cap":
			capB, _ = strconv.ParseInt(args[1], 10, 64)
		case "append":
			f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				at("%v", err)
			}
			_, err = f.WriteString(args[1])
			f.Close()
			if err != nil {
				at("%v", err)
			}
		case "rotate":
			if err := os.Rename(log, log+".1"); err != nil {
				at("%v", err)
			}
			if err := os.WriteFile(log, nil, 0o644); err != nil {
				at("%v", err)
			}
		case "removeold":
			os.Remove(log + ".1")
		case "remove":
			os.Remove(log)
		case "truncate":
			if err := os.Truncate(log, 0); err != nil {
				at("%v", err)
			}
		case "sample":
			want, _ := strconv.Atoi(args[1])
			pr := &probeReq{Nonce: newNonce(), Logs: []logReq{{Path: log, Start: !started, Cur: cur, Cap: capB, Re: re}}}
			raw, err := runProbe(context.Background(), h, pr, 10*time.Second)
			if err != nil {
				at("sample: %v", err)
			}
			last = raw.Logs[0]
			if last.Matches != want {
				at("matches = %d, want %d (lines %q)", last.Matches, want, last.Lines)
			}
			if !slices.Equal(last.Lines, args[2:]) && !(len(last.Lines) == 0 && len(args) == 2) {
				at("lines = %q, want %q", last.Lines, args[2:])
			}
			cur, started = last.Next, true
		case "expect":
			switch args[1] {
			case "rotated":
				if !last.Rotated {
					at("not seen as rotated: %+v", last)
				}
			case "truncated":
				if !last.Truncated {
					at("not seen as truncated: %+v", last)
				}
			case "behind":
				if want, _ := strconv.ParseInt(args[2], 10, 64); last.Behind != want {
					at("behind = %d, want %d", last.Behind, want)
				}
			default:
				at("unknown expectation")
			}
		default:
			at("unknown step")
		}
	}
}
