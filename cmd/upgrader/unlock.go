package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register("unlock", "clear a stale lock left by a run whose process died", runUnlock)
}

func runUnlock(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("unlock", stderr)
	var c common
	c.register(fs)
	force := fs.Bool("force", false, "clear a lock held from another machine (upgrader cannot check whether that process lives)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitInvalid
	}
	dir, err := dirArg(pos)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader unlock: %s\n", err)
		return exitInvalid
	}
	store, err := storeForDir(context.Background(), &c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader unlock: %s\n", err)
		return exitInvalid
	}
	defer store.Close()
	li, err := store.Unlock(context.Background(), *force)
	if err != nil {
		fmt.Fprintf(stderr, "upgrader unlock: %s\n", err)
		if li != nil {
			return exitLocked
		}
		return exitInvalid
	}
	fmt.Fprintf(stdout, "Cleared the lock of run %s (%s@%s, pid %d). Continue that run with: upgrader resume %s\n", li.Run, li.User, li.Host, li.PID, li.Run)
	return exitOK
}
