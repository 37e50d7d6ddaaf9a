package modules

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestSecrets_forms(t *testing.T) {
	const v = "pa'ss\"w\\o<rd>\n-----line-two-C4NARY-----"
	s := NewSecrets(v, "ab") // "ab" is too short to scrub
	js, _ := json.Marshal(map[string]string{"k": v})
	for _, text := range []string{
		"x " + v + " y",
		fmt.Sprintf("%q", v),
		fmt.Sprintf("%+q", v),
		string(js),
		"sh -c 'echo " + strings.ReplaceAll(v, "'", `'\''`) + "'",
		"https://u:" + url.QueryEscape(v) + "@h/",
		"line: -----line-two-C4NARY-----",
	} {
		if out := s.Redact(text); strings.Contains(out, "C4NARY") || strings.Contains(out, "pa'ss") {
			t.Errorf("leak: %q -> %q", text, out)
		}
	}
	if out := s.Redact("abc"); out != "abc" {
		t.Errorf("a short value was scrubbed: %q", out)
	}
	var none *Secrets
	none.Add("x")
	if none.Redact("hello") != "hello" {
		t.Error("nil set changed text")
	}
	// a value containing another is hidden whole
	s2 := NewSecrets("secret", "secret-and-more")
	if out := s2.Redact("[secret-and-more]"); out != "["+Redacted+"]" {
		t.Errorf("got %q", out)
	}
}

func TestSecrets_concurrent(t *testing.T) {
	s := NewSecrets()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				s.Add(fmt.Sprintf("secret-%d-%d", i, j))
				if out := s.Redact(fmt.Sprintf("x secret-%d-%d y", i, j)); out != "x "+Redacted+" y" {
					t.Errorf("got %q", out)
					return
				}
			}
		}()
	}
	wg.Wait()
}
