package modules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{-1: "size unknown", 0: "0 B", 1023: "1023 B", 1536: "1.5 KiB",
		5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestOnHost: a host error is named once, found by type, not by its text.
func TestOnHost(t *testing.T) {
	base := errors.New("disk full")
	e1 := OnHost("web", base)
	if e1.Error() != `host "web": disk full` || ErrorHost(e1) != "web" || !errors.Is(e1, base) {
		t.Fatalf("OnHost: %v (host %q)", e1, ErrorHost(e1))
	}
	wrapped := fmt.Errorf("upload #1: %w", e1)
	if got := OnHost("web", wrapped); got != wrapped {
		t.Errorf("named twice: %v", got)
	}
	if got := OnHost("db", wrapped); ErrorHost(got) != "db" || got.Error() != `host "db": upload #1: host "web": disk full` {
		t.Errorf("another host: %v", got)
	}
	// text that merely mentions the host is no host error
	if got := OnHost("web", errors.New(`copied from host "web"`)); ErrorHost(got) != "web" || !strings.HasPrefix(got.Error(), `host "web": `) {
		t.Errorf("untyped: %v", got)
	}
	if OnHost("web", nil) != nil || ErrorHost(base) != "" {
		t.Error("nil or plain errors")
	}
}
