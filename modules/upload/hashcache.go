package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
	"syscall"
)

// A local file's sha256 is computed once per process (plan and apply, every
// host of a step), not once per use: for a 1 GiB artifact on four hosts that
// was eight full reads. The key includes size, mtime and inode, so a file
// changed in between is hashed again.
type hashKey struct {
	path        string
	size, mtime int64
	dev, ino    uint64
}

type hashEntry struct {
	once sync.Once
	sum  string
	n    int64
	err  error
}

var hashes sync.Map // hashKey -> *hashEntry

func fileSHA256(path string, fi os.FileInfo) (string, int64, error) {
	k := hashKey{path: path, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), st.Ino
	}
	v, _ := hashes.LoadOrStore(k, &hashEntry{})
	e := v.(*hashEntry)
	e.once.Do(func() {
		e.sum, e.n, e.err = hashFile(path)
		if e.err != nil {
			hashes.Delete(k) // a failure is not remembered
		}
	})
	return e.sum, e.n, e.err
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
