package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Seed data. Account g (from 1) has id idBase+g and the email
// user<g>@example.com; every account holds user, one in a hundred system,
// one in 97 is disabled, and the accounts of adminSeeds hold admin too.
// Account 1 is the bench user: it has benchNotes notes, benchEvents audit
// events and no others, whatever the size, so that its pages are the same
// rows at every size and only the tables around them grow.
const (
	adminEmail    = "admin@localhost"
	adminPassword = "bench-scale admin password"
	userPassword  = "bench-scale user password"
	idBase        = 1000
	benchUser     = idBase + 1
	benchEmail    = "user1@example.com"
	benchDocument = "bench.pdf"
	benchOnDoc    = 10  // the bench user's notes on benchDocument
	benchEvents   = 200 // audit events the bench user acted in
	rareType      = "user.roles_changed"
)

// adminSeeds are the accounts that hold admin besides those of
// adminEvery: a few, spread over the whole range of ids at every size, so
// that a query walking the accounts to find them would show.
var adminSeeds = []int{7, 2007, 5007, 9007}

const adminEvery = 250_000 // and account g holds admin when g % adminEvery == 7

// sizes are the rows of one seeded size.
type sizes struct {
	users, notes, documents, events int
	benchNotes                      int // the bench user's
}

func (s sizes) String() string {
	return fmt.Sprintf("%s users, %s notes, %s documents, %s audit events", count(s.users), count(s.notes), count(s.documents), count(s.events))
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// seeder grows the database from one size to the next, with SQL run inside
// PostgreSQL (INSERT … SELECT over generate_series): rows are made where
// they are stored, with no round trip per row.
type seeder struct {
	pool *pgxpool.Pool
	hash string // one argon2id hash of userPassword, shared by every account
	have sizes
}

// grow adds rows up to to. Past a few hundred thousand rows, the tables'
// secondary indexes are dropped first and built again afterwards, as a
// bulk load does: the rows are the same, in less time.
func (s *seeder) grow(ctx context.Context, to sizes) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	exec := func(what, sql string, args ...any) error {
		start := time.Now()
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("seed %s: %w", what, err)
		}
		log.Printf("  %s: %d rows, %v", what, tag.RowsAffected(), time.Since(start).Round(time.Millisecond))
		return nil
	}
	tables := []string{"users", "user_roles", "notes", "documents", "audit_events"}
	// Foreign keys are checked by triggers, one lookup a row: the rows made
	// here reference accounts made here, so a superuser skips them.
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		log.Printf("  foreign keys stay checked: %v", err)
	}
	defer conn.Exec(context.Background(), "RESET session_replication_role")
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	var rebuild []string
	if to.notes-s.have.notes > 300_000 {
		rows, err := conn.Query(ctx, `
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = current_schema() AND i.tablename = ANY ($1)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`, tables)
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				return err
			}
			names, rebuild = append(names, name), append(rebuild, def)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := exec("drop secondary indexes", "DROP INDEX "+strings.Join(names, ", ")); err != nil {
			return err
		}
	}

	if err := exec("roles", `INSERT INTO roles (name) VALUES ('user'), ('system'), ('admin') ON CONFLICT DO NOTHING`); err != nil {
		return err
	}
	from, n := s.have.users+1, to.users
	if err := exec("users", `
INSERT INTO users (id, email, canonical_email, password_hash, disabled, created_at, updated_at) OVERRIDING SYSTEM VALUE
SELECT $1::bigint + g, 'user' || g || '@example.com', 'user' || g || '@example.com', $2, g % 97 = 0,
       timestamptz '2025-01-01' + g * interval '10 seconds', timestamptz '2025-01-01' + g * interval '10 seconds'
FROM generate_series($3::bigint, $4::bigint) g`, idBase, s.hash, from, n); err != nil {
		return err
	}
	if err := exec("user ids", `SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))`); err != nil {
		return err
	}
	if err := exec("user_roles", `
INSERT INTO user_roles (user_id, role_id)
SELECT $1::bigint + g, r.id FROM generate_series($2::bigint, $3::bigint) g, roles r
WHERE r.name = 'user' OR (r.name = 'system' AND g % 100 = 3) OR (r.name = 'admin' AND (g = ANY ($4::bigint[]) OR g % $5::bigint = 7))`,
		idBase, from, n, adminSeeds, adminEvery); err != nil {
		return err
	}

	// Other accounts' notes, on the documents' sources, spread over every
	// account but the bench user's, created a second apart.
	if err := exec("bench user's notes", `
INSERT INTO notes (owner_id, document_src, title, body, created_at, updated_at)
SELECT $1::bigint, CASE WHEN g <= $2 THEN $3 ELSE 'doc-' || (g % 1000) || '.pdf' END, 'note ' || g,
       'a note of a few words, as notes are; this one is number ' || g,
       timestamptz '2025-03-01' + g * interval '1 minute', timestamptz '2025-03-01' + g * interval '1 minute'
FROM generate_series($4::bigint, $5::bigint) g`, benchUser, benchOnDoc, benchDocument, s.have.benchNotes+1, to.benchNotes); err != nil {
		return err
	}
	otherNotes := func(sz sizes) int { return sz.notes - sz.benchNotes }
	if err := exec("notes", `
INSERT INTO notes (owner_id, document_src, title, body, created_at, updated_at)
SELECT $1::bigint + 2 + (g * 7919) % ($2::bigint - 1), 'doc-' || (g * 104729) % $3::bigint || '.pdf', 'note ' || g,
       'a note of a few words, as notes are; this one is number ' || g,
       timestamptz '2025-06-01' + g * interval '1 second', timestamptz '2025-06-01' + g * interval '1 second'
FROM generate_series($4::bigint, $5::bigint) g`, idBase, n, to.documents, otherNotes(s.have)+1, otherNotes(to)); err != nil {
		return err
	}
	if err := exec("documents", `
INSERT INTO documents (owner_id, file_name, size_bytes, page_count, blob_key, created_at)
SELECT $1::bigint + 2 + (g * 7919) % ($2::bigint - 1), 'doc-' || g || '.pdf', 20000 + (g * 31) % 2000000, 1 + g % 40,
       'bench/' || g, timestamptz '2025-06-01' + g * interval '1 minute'
FROM generate_series($3::bigint, $4::bigint) g`, idBase, n, s.have.documents+1, to.documents); err != nil {
		return err
	}
	// The audit trail of the last 30 days (within the retention): mostly
	// logins and refreshes, rarely an account change.
	otherEvents := func(sz sizes) int { return max(0, sz.events-benchEvents) }
	if err := exec("audit events", `
INSERT INTO audit_events (at, type, actor_user_id, subject_user_id, subject, client_addr, user_agent, request_id, operation_id)
SELECT now() - interval '30 days' * random(), t.type, a.id, a.id, 'user:' || a.id,
       '10.0.' || g % 256 || '.' || 1 + g % 250, 'bench-scale/1', 'bench-' || g, t.op
FROM generate_series($1::bigint, $2::bigint) g,
     LATERAL (SELECT $3::bigint + 2 + (g * 7919) % ($4::bigint - 1) AS id) a,
     LATERAL (SELECT CASE
         WHEN g % 1000 < 600 THEN 'login.succeeded' WHEN g % 1000 < 850 THEN 'token.refreshed'
         WHEN g % 1000 < 930 THEN 'login.failed'    WHEN g % 1000 < 980 THEN 'session.ended'
         WHEN g % 1000 < 990 THEN 'user.created'    WHEN g % 1000 < 995 THEN 'user.password_changed'
         WHEN g % 1000 < 998 THEN 'user.disabled'   ELSE $5 END AS type,
       CASE WHEN g % 1000 < 930 THEN 'createToken' ELSE '' END AS op) t`,
		otherEvents(s.have)+1, otherEvents(to), idBase, n, rareType); err != nil {
		return err
	}
	if s.have.users == 0 {
		if err := exec("bench user's audit events", `
INSERT INTO audit_events (at, type, actor_user_id, subject_user_id, subject, client_addr, user_agent, request_id, operation_id)
SELECT now() - interval '30 days' * g / $1::bigint, CASE WHEN g % 10 = 0 THEN $3 ELSE 'login.succeeded' END,
       $2::bigint, $2::bigint, 'user:' || $2::bigint, '10.1.0.1', 'bench-scale/1', 'bench-user-' || g, 'createToken'
FROM generate_series(1, $1::bigint) g`, benchEvents, benchUser, rareType); err != nil {
			return err
		}
	}

	for _, def := range rebuild {
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(def, "CREATE UNIQUE INDEX "), "CREATE INDEX "), " ")
		if err := exec("index "+name, def); err != nil {
			return err
		}
	}
	if err := exec("vacuum analyze", "VACUUM (ANALYZE) "+strings.Join(tables, ", ")); err != nil {
		return err
	}
	if err := exec("checkpoint", "CHECKPOINT"); err != nil {
		return err
	}
	s.have = to
	return nil
}
