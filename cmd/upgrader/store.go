package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/upgrader-dev/upgrader/executor"
	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/lang"
)

// openStore returns where the runs of cfg live: its state block's postgres
// workspace, or the state directory (SPEC 2.4).
func openStore(ctx context.Context, c *common, cfg *lang.Config) (runstore.Store, error) {
	if cfg.State == nil || cfg.State.Backend != "postgres" {
		return runstore.OpenLocal(c.stateDirFor(cfg.Dir)), nil
	}
	st := cfg.State
	if st.DSN == "" {
		return nil, errors.New("the state block's dsn has no value: give its variable (-var, UPGRADER_VAR_NAME) or set UPGRADER_STATE_DSN")
	}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return pgstore.Open(octx, pgstore.Options{DSN: st.DSN, Schema: st.Schema, Workspace: st.Name, Lease: st.Lease})
}

// storeForDir opens the store of the configuration in dir for the commands
// that need it before, or without, the whole configuration (status,
// approve, unlock, runs): only the state block must load, so variables
// the rest needs may be missing. A directory without configuration files
// is a state directory's parent (the local store).
func storeForDir(ctx context.Context, c *common, dir string) (runstore.Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if m, _ := filepath.Glob(filepath.Join(abs, "*.hcl")); len(m) == 0 {
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
		return runstore.OpenLocal(c.stateDirFor(dir)), nil
	}
	cfg, _ := lang.Load(abs, executor.Schemas(newRegistry()), lang.Options{Vars: c.vars, VarFiles: absPaths(c.varFiles), Unset: true})
	if cfg == nil || cfg.State == nil {
		return runstore.OpenLocal(c.stateDirFor(dir)), nil
	}
	if cfg.State.Backend == "postgres" && cfg.State.Name == "" {
		return nil, fmt.Errorf("the state block in %s does not load: run `upgrader validate %s`", dir, dir)
	}
	cfg.Dir = dir
	return openStore(ctx, c, cfg)
}

// holderText names a lock holder for the human view.
func holderText(h *runstore.Holder) string {
	return fmt.Sprintf("%s@%s (pid %d) since %s", h.User, h.Host, h.PID, h.Since.Local().Format(time.RFC3339))
}

// lockWhat names what a store's lock guards, for LockedError.
func lockWhat(s runstore.Store) string {
	if _, ok := s.(*runstore.Local); ok {
		return ""
	}
	return s.Where()
}
