package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/pglocal"
)

// database is rolegate's embedded PostgreSQL, attached to while rolegate
// runs it.
type database struct {
	pg   *pglocal.Server
	pool *pgxpool.Pool
}

func attach(ctx context.Context, dataDir string) (*database, error) {
	pg, err := pglocal.Start(ctx, pglocal.Options{Dir: dataDir, Attach: true})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		_ = pg.Stop(context.Background())
		return nil, err
	}
	return &database{pg: pg, pool: pool}, nil
}

// close detaches, and removes the cluster's directory when it lives
// outside dir (pglocal's fallback for a root that the postgres user cannot
// reach), once rolegate has stopped it: dir itself goes with its caller.
func (d *database) close(dir string) {
	d.pool.Close()
	_ = d.pg.Stop(context.Background())
	if dd := d.pg.DataDir(); dd != "" && !strings.HasPrefix(dd, dir+string(filepath.Separator)) {
		defer os.RemoveAll(dd)
	}
}

// size is pg_database_size of rolegate's database.
func (d *database) size(ctx context.Context) (n int64, err error) {
	err = d.pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// benchHash is the one password hash every seeded account shares, with
// the parameters rolegate itself hashes with, so that a login costs what
// it costs.
func benchHash() (string, error) { return password.Hash(userPassword, password.OWASP) }

// route is one request wrk repeats.
type route struct {
	name    string
	path    string
	token   string // bearer token, or
	form    string // a password grant posted to path
	indexed bool   // an indexed read, held to the ratio
	explain []explained
}

// explained is a query a route runs, with the literal arguments it runs it
// with.
type explained struct {
	query string // its name in queries/*.sql
	args  []string
}

const maxID = "9223372036854775807"

// routes logs the admin and the bench user in and returns every route,
// with the queries behind each.
func routes(ctx context.Context, rg *process, d *database) ([]route, error) {
	admin, err := login(ctx, rg, adminEmail, adminPassword)
	if err != nil {
		return nil, err
	}
	user, err := login(ctx, rg, benchEmail, userPassword)
	if err != nil {
		return nil, err
	}
	// The deep page: past the bench user's newest half.
	var at pgtype.Timestamptz
	var id int64
	if err := d.pool.QueryRow(ctx, `SELECT created_at, id FROM notes WHERE owner_id = $1
ORDER BY created_at DESC, id DESC OFFSET (SELECT count(*) / 2 FROM notes WHERE owner_id = $1) LIMIT 1`, benchUser).Scan(&at, &id); err != nil {
		return nil, fmt.Errorf("the bench user's deep page: %w", err)
	}
	cursor := page.Cursor{At: at.Time, ID: id}.String()
	var adminRole int64
	if err := d.pool.QueryRow(ctx, "SELECT id FROM roles WHERE name = 'admin'").Scan(&adminRole); err != nil {
		return nil, err
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	bench, page51 := strconv.Itoa(benchUser), "51"
	open := []string{lit("-infinity"), lit("infinity")}
	adminCheck := explained{"IsEnabledHolder", []string{"1", lit("admin")}}
	form := url.Values{"grant_type": {"password"}, "username": {benchEmail}, "password": {userPassword}}.Encode()
	return []route{
		{name: "password login (POST /token)", path: "/token", form: form,
			explain: []explained{{"GetUserWithRolesByCanonicalEmail", []string{lit(benchEmail)}}}},
		{name: "GET /identify/me", path: "/identify/me", token: user, indexed: true},
		{name: "GET /notes, first page", path: "/notes", token: user, indexed: true,
			explain: []explained{{"ListNotes", []string{bench, lit("infinity"), maxID, page51}}}},
		{name: "GET /notes, deep cursor page", path: "/notes?cursor=" + cursor, token: user, indexed: true,
			explain: []explained{{"ListNotes", []string{bench, lit(at.Time.UTC().Format("2006-01-02 15:04:05.999999Z07")), strconv.FormatInt(id, 10), page51}}}},
		{name: "GET /notes/document/src/{src}", path: "/notes/document/src/" + benchDocument, token: user, indexed: true,
			explain: []explained{{"ListNotesByDocument", []string{bench, lit(benchDocument), "1000"}}}},
		{name: "GET /users, first page", path: "/users", token: admin, indexed: true,
			explain: []explained{adminCheck, {"ListUsersWithRoles", []string{"0", page51}}}},
		{name: "GET /users?role=admin", path: "/users?role=admin", token: admin, indexed: true,
			explain: []explained{{"ListRoleHolders", []string{lit("admin"), "0", page51}}}},
		{name: "GET /audit-events, first page", path: "/audit-events", token: admin, indexed: true,
			explain: []explained{{"ListAuditEvents", append(append([]string{lit("infinity"), maxID}, open...), page51)}}},
		{name: "GET /audit-events?type=" + rareType, path: "/audit-events?type=" + rareType, token: admin, indexed: true,
			explain: []explained{{"ListAuditEventsByType", append(append([]string{lit(rareType), lit("infinity"), maxID}, open...), page51)}}},
		{name: "GET /audit-events?user_id={bench user}", path: "/audit-events?user_id=" + bench, token: admin, indexed: true,
			explain: []explained{{"ListAuditEventsByUser", append(append([]string{bench, "NULL", lit("infinity"), maxID}, open...), page51)}}},
		{name: "the last-admin guard of every admin change", explain: []explained{{"CountEnabledHolders", []string{strconv.FormatInt(adminRole, 10)}}}},
	}, nil
}
