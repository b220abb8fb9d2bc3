// Package orgstest fills a database with organizations at scale, for the
// tests and benchmarks that measure the replicas' copy of the memberships
// (package orgs), in memory and through HTTP.
package orgstest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Seed fills the database of pool with users accounts
// (scale<i>@example.com, i from 1) and orgs organizations (slugs scale-1
// to scale-<orgs>), each account a member of perUser of them, with a mix
// of roles: one membership in ten owner, three in ten editor and viewer,
// the rest viewer. It returns how many memberships the database holds
// then, and logs how long it took.
//
// The memberships reach no change log: a server already following it is
// not made to re-read every one (nor learns of them), while one started
// afterwards loads them all. Seed writes in one transaction; as a
// superuser, with the triggers off (session_replication_role replica:
// the foreign keys' checks, two thirds of the time at 1M, go with them),
// and otherwise by deleting what the log's trigger wrote before it
// commits.
func Seed(tb testing.TB, pool *pgxpool.Pool, users, orgs, perUser int) int {
	tb.Helper()
	ctx := context.Background()
	started := time.Now()
	var n int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var super bool
		if err := tx.QueryRow(ctx, "SELECT current_setting('is_superuser') = 'on'").Scan(&super); err != nil {
			return err
		}
		if super {
			if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
				return err
			}
		}
		for _, s := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (email, canonical_email, password_hash)
			  SELECT 'scale' || g || '@example.com', 'scale' || g || '@example.com', 'x' FROM generate_series(1, $1::int) g`, []any{users}},
			{`INSERT INTO orgs (slug, name) SELECT 'scale-' || g, 'Scale ' || g FROM generate_series(1, $1::int) g`, []any{orgs}},
			{`WITH u AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM users WHERE email LIKE 'scale%'),
			       o AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS j FROM orgs WHERE slug LIKE 'scale-%')
			  INSERT INTO org_members (org_id, user_id, roles)
			  SELECT o.id, u.id, CASE (u.i + k) % 10 WHEN 0 THEN '{owner}'::text[]
			                                         WHEN 1 THEN '{editor,viewer}' WHEN 2 THEN '{editor,viewer}' WHEN 3 THEN '{editor,viewer}'
			                                         ELSE '{viewer}' END
			  FROM u CROSS JOIN generate_series(0, $1::int - 1) k
			  JOIN o ON o.j = (u.i * $1::int + k) % $2::int`, []any{perUser, orgs}},
			// The organizations are this transaction's: no one else logged
			// a change to them. Nothing to delete with the triggers off.
			{`DELETE FROM org_changes WHERE org_id IN (SELECT id FROM orgs WHERE slug LIKE 'scale-%')`, nil},
		} {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, "SELECT count(*) FROM org_members").Scan(&n)
	})
	if err != nil {
		tb.Fatalf("orgstest: seed: %v", err)
	}
	tb.Logf("seeded %d accounts, %d organizations, %d memberships in %v", users, orgs, n, time.Since(started).Round(time.Millisecond))
	return n
}

// Heap returns the bytes of live heap after a collection.
func Heap() uint64 {
	runtime.GC()
	runtime.GC() // the second collection runs the first one's cleanups' frees
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
