package observe

import (
	"bytes"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/tools/txtar"
)

// FuzzParseProbe feeds arbitrary host output to the parser: it may return an
// error, never panic, and never report a cursor that moves backwards within
// the same file or beyond what was read.
func FuzzParseProbe(f *testing.F) {
	files, _ := filepath.Glob("testdata/parse/*.txtar")
	for _, file := range files {
		a, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range a.Files {
			if s.Name == "output" {
				f.Add(s.Data)
			}
		}
	}
	f.Add([]byte("@@log 0 77 100\n@@data 0 cur 10\nERROR a\nERROR b\nparti\n@@end n\n@@done\n"))
	f.Add([]byte("@@log 0 78 100\n@@data 0 old 10 40\nERROR a\n\n@@end n\n@@data 0 new 0\nx\n@@end n\n@@done\n"))
	f.Add([]byte("@@trunc 0\n@@df 0 1\n/dev/x 1 1 0 100% /\n@@done\n"))
	re := regexp.MustCompile("ERROR")
	f.Fuzz(func(t *testing.T, out []byte) {
		req := &probeReq{Nonce: "n", DiskPaths: []string{"/", "/var"},
			Logs: []logReq{{Path: "/var/log/app.log", Cur: logCursor{Ino: 77, Off: 10}, Cap: 64, Re: re}}}
		raw, err := parseProbe(bytes.NewReader(out), req)
		if err != nil {
			return
		}
		lr := raw.Logs[0]
		if lr.Next.Off < 0 || (lr.Next.Ino == 77 && !lr.Truncated && lr.Next.Off < 10) {
			t.Errorf("cursor moved backwards: %+v", lr.Next)
		}
		if lr.Next.Off > 10+2*64+int64(len(out)) {
			t.Errorf("cursor beyond what was read: %+v", lr.Next)
		}
		if len(lr.Lines) > keepLines {
			t.Errorf("kept %d lines", len(lr.Lines))
		}
	})
}
