// Package testdb gives each test its own fresh PostgreSQL database with the
// schema applied, cloned from a migrated template so that tests are isolated
// and run in parallel.
//
// The server is TEST_DATABASE_URL when set (a URL whose user may create
// databases); otherwise the package's TestMain, through Main, starts one
// embedded cluster for the test binary. `make test` runs the whole suite
// under testdb/withdb, so that all packages share one cluster.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/dbtimeout"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/pglocal"
)

// EnvURL names the variable that points the tests at a running server.
const EnvURL = "TEST_DATABASE_URL"

var (
	mu       sync.Mutex
	adminURL string // set by Main
	admin    *pgxpool.Pool
	tmplName string
)

// Main runs the tests of a package that uses testdb: call it from TestMain.
// It starts an embedded cluster unless TEST_DATABASE_URL is set, runs the
// tests, stops the cluster and exits with the tests' code.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	adminURL = os.Getenv(EnvURL)
	if adminURL == "" {
		srv, dir, err := StartCluster(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "testdb:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = srv.Stop(ctx)
		}()
		adminURL = srv.AdminURL("postgres")
	}
	defer func() {
		if admin != nil {
			admin.Close()
		}
	}()
	return m.Run()
}

// StartCluster starts a throwaway embedded cluster (fsync off) in a new
// temporary directory, which the caller removes after stopping the server.
func StartCluster(ctx context.Context) (*pglocal.Server, string, error) {
	dir, err := os.MkdirTemp("", "rolegate-testdb-")
	if err != nil {
		return nil, "", err
	}
	srv, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Database: "postgres"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return srv, dir, nil
}

// RequestBound is how long each database call of a request may take on a
// pool from New: production's bound (dbtimeout.DefaultBound) with room for
// a test machine whose cores run many tests at once.
const RequestBound = 5 * dbtimeout.DefaultBound

// New returns a pool on a fresh database holding the current schema, dropped
// when the test ends. It is set up as rolegate serve's pool is (package
// dbtimeout): a request's database calls are bounded, by RequestBound, and
// a call past its bound cancels its statement on the server.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return Open(tb, URL(tb))
}

// Open returns a pool on the database at url, set up as New's, closed when
// the test ends.
func Open(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	dbtimeout.Configure(cfg, RequestBound, httplog.InRequest)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the drop registered by URL
	return pool
}

// URL creates a fresh database holding the current schema and returns its
// URL; the database is dropped when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	tmpl := template(tb)
	return create(tb, "TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
}

// EmptyURL creates a fresh database with no schema (for tests of start-up and
// migration) and returns its URL; it is dropped when the test ends.
func EmptyURL(tb testing.TB) string {
	tb.Helper()
	return create(tb, "")
}

func create(tb testing.TB, clause string) string {
	tb.Helper()
	pool := adminPool(tb)
	name := "test_" + randomHex(8)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+clause); err != nil {
		tb.Fatalf("testdb: create database: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return withDatabase(tb, adminURL, name)
}

func adminPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if admin != nil {
		return admin
	}
	if adminURL == "" {
		tb.Fatalf("testdb: no server: call testdb.Main from TestMain, or set %s", EnvURL)
	}
	pool, err := pgxpool.New(context.Background(), adminURL)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	admin = pool
	return admin
}

// template returns the name of the migrated template database for the
// current schema, creating it once per server: under an advisory lock, since
// several test binaries may share the server, and under a temporary name
// until it is complete.
func template(tb testing.TB) string {
	tb.Helper()
	pool := adminPool(tb)
	mu.Lock()
	defer mu.Unlock()
	if tmplName != "" {
		return tmplName
	}
	// The template holds the schema and the spec's roles.
	sum := sha256.Sum256(append([]byte(rolegate.Schema), rolegate.OpenAPIYAML...))
	name := "rolegate_tmpl_" + hex.EncodeToString(sum[:6])
	ctx := context.Background()
	err := func() error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('rolegate testdb template'))"); err != nil {
			return err
		}
		defer conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('rolegate testdb template'))")
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		building := name + "_building"
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
			return err
		}
		if err := applySchema(ctx, withDatabase(tb, adminURL, building)); err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize())
		return err
	}()
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			tb.Fatalf("testdb: template: %s (%s)", pgErr.Message, pgErr.Code)
		}
		tb.Fatalf("testdb: template: %v", err)
	}
	tmplName = name
	return name
}

// applySchema readies the database at u as rolegate.ApplySchema does for
// the server, with the spec's roles.
func applySchema(ctx context.Context, u string) error {
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return err
	}
	defer pool.Close()
	return rolegate.ApplySchema(ctx, pool, spec.Policy.Roles(), slog.New(slog.DiscardHandler))
}

func withDatabase(tb testing.TB, raw, name string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("testdb: %s is not a URL", EnvURL)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
