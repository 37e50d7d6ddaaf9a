package ssh

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/upgrader-dev/upgrader/modules"
)

// The framing survives any split of the stream into reads, and output that
// resembles the marker.
func TestStream_untilSplitReads(t *testing.T) {
	const b = "__UPGRADER_0123"
	cases := []struct{ in, out1, line1, out2, line2 string }{
		{"hello\n\n" + b + " 0\nsecond\n" + b + " 3\n", "hello\n", "0", "second", "3"},
		{"\n" + b + " 12\n\n" + b + " 0\n", "", "12", "", "0"},
		{"__UPGRADER_ almost\n__UPGRADER_012 also\n" + b + "4 1\n\n" + b + " 2\n", "__UPGRADER_ almost\n__UPGRADER_012 also\n" + b + "4 1\n", "2", "", ""},
	}
	for _, c := range cases {
		for _, r := range []io.Reader{strings.NewReader(c.in), iotest.OneByteReader(strings.NewReader(c.in)), iotest.HalfReader(strings.NewReader(c.in))} {
			s := &stream{r: r}
			var out bytes.Buffer
			emit := func(p []byte) { out.Write(p) }
			line, err := s.until([]byte("\n"+b+" "), emit)
			if err != nil || out.String() != c.out1 || line != c.line1 {
				t.Fatalf("%q: first: %q %q %v", c.in, out.String(), line, err)
			}
			if c.line2 == "" {
				continue
			}
			out.Reset()
			line, err = s.until([]byte("\n"+b+" "), emit)
			if err != nil || out.String() != c.out2 || line != c.line2 {
				t.Fatalf("%q: second: %q %q %v", c.in, out.String(), line, err)
			}
		}
	}
}

func TestStream_untilEOF(t *testing.T) {
	s := &stream{r: strings.NewReader("partial output")}
	var out bytes.Buffer
	if _, err := s.until([]byte("\n__UPGRADER_x "), func(p []byte) { out.Write(p) }); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("want an error at EOF, got %v", err)
	}
}

func TestScript_env(t *testing.T) {
	cases := []struct {
		cmd  string
		env  map[string]string
		want string
		bad  bool
	}{
		{"echo hi", nil, "echo hi", false},
		{"echo $A", map[string]string{"B": "2", "A": "it's"}, `export A='it'\''s'; export B='2'; echo $A`, false},
		{"id", map[string]string{"1X": "1"}, "", true},
		{"id", map[string]string{"A;rm": "1"}, "", true},
	}
	for _, c := range cases {
		got, err := script(modulesCommand(c.cmd, c.env))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%q %v: got %q %v", c.cmd, c.env, got, err)
		}
	}
}

// The reader runs the framed script exactly, whatever it holds, and runs
// nothing when the frame is cut short. Local /bin/sh, no sudo.
func TestWrap_reader(t *testing.T) {
	scr := "printf '%s|' \"$X\" 'a\\b' '  lead' \"$(cat)\"\nexit 3"
	w := wrap("export X='CANARY'\\''s'; "+scr, false, "")
	if strings.Contains(w.line, "CANARY") {
		t.Fatalf("script in the command line: %s", w.line)
	}
	cmd := exec.Command("/bin/sh", "-c", w.line)
	cmd.Stdin = strings.NewReader(w.stdin + "rest of stdin")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != `CANARY's|a\b|  lead|rest of stdin|` {
		t.Fatalf("%q %v", out, err)
	}
	// A frame without its closing mark runs nothing.
	cmd = exec.Command("/bin/sh", "-c", w.line)
	cmd.Stdin = strings.NewReader(w.stdin[:len(w.stdin)-40])
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(string(out), "nothing was run") {
		t.Fatalf("cut frame: %q %v", out, err)
	}
}

func modulesCommand(cmd string, env map[string]string) modules.Command {
	return modules.Command{Cmd: cmd, Env: env}
}

func TestUnixMode(t *testing.T) {
	cases := map[uint32]os.FileMode{
		0o100644: 0o644,
		0o040755: os.ModeDir | 0o755,
		0o120777: os.ModeSymlink | 0o777,
		0o104755: os.ModeSetuid | 0o755,
		0o041777: os.ModeDir | os.ModeSticky | 0o777,
	}
	for raw, want := range cases {
		if got := unixMode(raw); got != want {
			t.Errorf("%o: got %v, want %v", raw, got, want)
		}
	}
}
