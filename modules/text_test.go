package modules

import "testing"

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{-1: "size unknown", 0: "0 B", 1023: "1023 B", 1536: "1.5 KiB",
		5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
