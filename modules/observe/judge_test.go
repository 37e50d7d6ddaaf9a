package observe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestJudge_cases feeds each case's sample records to the evaluator, as the
// live window and the after-the-deadline judgement do, and compares the
// first failure with the want section ("pass", or "fail at N" and the reasons).
func TestJudge_cases(t *testing.T) {
	eachCase(t, "testdata/judge/*.txtar", func(t *testing.T, _ []byte, sec map[string][]byte) {
		_, s := mustSettings(t, string(sec["observe.hcl"]), []string{"standby", "primary"}, []string{"regression"})
		st := newState()
		got := "pass"
		sc := bufio.NewScanner(bytes.NewReader(sec["records.jsonl"]))
		for n := 1; sc.Scan(); n++ {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("record %d: %v", n, err)
			}
			if fails := s.evaluate(st, &r); len(fails) > 0 {
				got = fmt.Sprintf("fail at %d\n%s", n, strings.Join(fails, "\n"))
				break
			}
		}
		if want := strings.TrimSpace(string(sec["want"])); got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
}
