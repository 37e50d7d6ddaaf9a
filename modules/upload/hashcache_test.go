package upload

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A file's hash is remembered while it is unchanged, and computed again
// when its content (size or mtime) changes.
func TestFileSHA256_cachedUntilChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	sum1, n, err := fileSHA256(p, fi)
	if err != nil || n != 3 || sum1 != "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed" {
		t.Fatalf("first: %s %d %v", sum1, n, err)
	}
	again, _, _ := fileSHA256(p, fi)
	if again != sum1 {
		t.Fatalf("cached sum differs: %s", again)
	}
	if err := os.WriteFile(p, []byte("two!"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, time.Now(), time.Now().Add(time.Second))
	fi2, _ := os.Stat(p)
	sum2, n2, err := fileSHA256(p, fi2)
	if err != nil || n2 != 4 || sum2 == sum1 {
		t.Fatalf("after change: %s %d %v", sum2, n2, err)
	}
}
