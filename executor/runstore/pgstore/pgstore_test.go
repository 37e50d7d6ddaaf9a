package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/runstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/pgstore"
	"github.com/upgrader-dev/upgrader/executor/runstore/storetest"
	"github.com/upgrader-dev/upgrader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// database returns the DSN of a private database for this test.
func database(t *testing.T) (*testdb.Instance, string, string) {
	t.Helper()
	pg := testdb.Postgres(t)
	name := testdb.UniqueName("state")
	return pg, name, pg.CreateDatabase(name)
}

func open(t *testing.T, o pgstore.Options) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	pg, db, dsn := database(t)
	opts := map[runstore.Store]pgstore.Options{}
	storetest.Suite{
		New: func(t *testing.T) runstore.Store {
			o := pgstore.Options{DSN: dsn, Schema: testdb.UniqueName("s"), Workspace: "shop-prod", Lease: 3 * time.Second}
			s := open(t, o)
			opts[s] = o
			return s
		},
		Reopen: func(t *testing.T, s runstore.Store) runstore.Store {
			o := opts[s]
			r := open(t, o)
			opts[r] = o
			return r
		},
		// The holder went silent: its lease ran out.
		Expire: func(t *testing.T, s runstore.Store) {
			pg.Exec(db, `UPDATE `+opts[s].Schema+`.locks SET expires = now() - interval '1 second'`)
		},
		Fenced: true,
	}.Run(t)
}
