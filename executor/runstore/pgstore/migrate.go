package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations of the store's own schema; %[1]s is the quoted schema. A
// release only appends to this list: version N is migrations[N-1].
var migrations = []string{
	// 1: runs, their events (one row per event), the lease, approvals,
	// observation samples and the backup index, all per workspace.
	`CREATE TABLE %[1]s.runs (
		workspace text NOT NULL,
		run       text NOT NULL,
		created   timestamptz NOT NULL DEFAULT now(),
		summary   jsonb,
		PRIMARY KEY (workspace, run));
	CREATE TABLE %[1]s.events (
		workspace text NOT NULL,
		run       text NOT NULL,
		seq       bigint NOT NULL,
		type      text NOT NULL,
		line      text NOT NULL,
		PRIMARY KEY (workspace, run, seq),
		FOREIGN KEY (workspace, run) REFERENCES %[1]s.runs ON DELETE CASCADE);
	CREATE TABLE %[1]s.locks (
		workspace text PRIMARY KEY,
		epoch     bigint NOT NULL,
		run       text,
		holder    jsonb,
		since     timestamptz,
		expires   timestamptz);
	CREATE TABLE %[1]s.approvals (
		workspace text NOT NULL,
		run       text NOT NULL,
		node      text NOT NULL,
		by_whom   text NOT NULL,
		at        timestamptz NOT NULL,
		PRIMARY KEY (workspace, run, node),
		FOREIGN KEY (workspace, run) REFERENCES %[1]s.runs ON DELETE CASCADE);
	CREATE TABLE %[1]s.samples (
		workspace text NOT NULL,
		run       text NOT NULL,
		seq       bigint GENERATED ALWAYS AS IDENTITY,
		line      text NOT NULL,
		PRIMARY KEY (workspace, run, seq),
		FOREIGN KEY (workspace, run) REFERENCES %[1]s.runs ON DELETE CASCADE);
	CREATE TABLE %[1]s.backups (
		workspace text NOT NULL,
		id        text NOT NULL,
		run       text NOT NULL,
		name      text NOT NULL,
		created   timestamptz,
		manifest  jsonb NOT NULL,
		PRIMARY KEY (workspace, id));`,
}

// Version is the schema version this build writes.
var Version = len(migrations)

// migrate creates the schema on first use and applies the migrations it
// lacks, all in one transaction under an advisory lock, so that two
// controllers starting at once do not both migrate. A schema newer than this
// build is refused: an older upgrader must not write what it does not know.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('upgrader state migrate ' || $1))`, s.schemaName); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
		CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`, s.schema)); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(max(version), 0) FROM %s.schema_migrations`, s.schema)).Scan(&have); err != nil {
		return err
	}
	if have > Version {
		return fmt.Errorf("state schema %q is at version %d, newer than this upgrader knows (%d): upgrade upgrader", s.schemaName, have, Version)
	}
	for v := have + 1; v <= Version; v++ {
		if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v-1], s.schema)); err != nil {
			return fmt.Errorf("state schema %q: migration %d: %w", s.schemaName, v, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.schema_migrations (version) VALUES ($1)`, s.schema), v); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }
