package dbtimeout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/dbtimeout"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/problem"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const bound = 300 * time.Millisecond

// boundedPool is a pool of at most maxConns connections on a fresh
// database, set up by Configure.
func boundedPool(t *testing.T, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	dbtimeout.Configure(cfg, 0, nil)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func exec(sql string) func(context.Context, *pgxpool.Pool) error {
	return func(ctx context.Context, p *pgxpool.Pool) error {
		_, err := p.Exec(ctx, sql)
		return err
	}
}

func TestBound(t *testing.T) {
	t.Parallel()
	p := boundedPool(t, 2)
	marked := dbtimeout.Bound(context.Background(), bound)
	tests := []struct {
		name    string
		ctx     context.Context
		call    func(context.Context, *pgxpool.Pool) error
		timeout bool
	}{
		{"a statement past the bound", marked, exec("SELECT pg_sleep(5)"), true},
		{"a statement within it", marked, exec("SELECT pg_sleep(0.01)"), false},
		{"an unmarked context: no bound", context.Background(), exec("SELECT pg_sleep(0.5)"), false},
		{"a zero bound: no bound", dbtimeout.Bound(context.Background(), 0), exec("SELECT pg_sleep(0.5)"), false},
		{"rows that take too long", marked, func(ctx context.Context, p *pgxpool.Pool) error {
			rows, err := p.Query(ctx, "SELECT pg_sleep(5) FROM generate_series(1, 2)")
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Err()
		}, true},
		{"a statement in a transaction", marked, func(ctx context.Context, p *pgxpool.Pool) error {
			return pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "SELECT pg_sleep(5)")
				return err
			})
		}, true},
		{"time between statements is not database time", marked, func(ctx context.Context, p *pgxpool.Pool) error {
			return pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
					return err
				}
				time.Sleep(2 * bound) // hashing a password, say
				_, err := tx.Exec(ctx, "SELECT 1")
				return err
			})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := time.Now()
			err := tt.call(tt.ctx, p)
			took := time.Since(started)
			switch {
			case !tt.timeout && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.timeout:
				checkUnavailable(t, err, took)
			}
			// The pool replaced any connection the deadline closed.
			if _, err := p.Exec(marked, "SELECT 1"); err != nil {
				t.Errorf("the pool after the call: %v", err)
			}
		})
	}
}

// checkUnavailable fails unless err came soon after the bound and dberr
// makes it a 503 with Retry-After.
func checkUnavailable(t *testing.T, err error, took time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error after %v, want one at the bound", took)
	}
	if took < bound || took > bound+time.Second {
		t.Errorf("the call failed after %v, want soon after %v", took, bound)
	}
	pe, ok := errors.AsType[*problem.Error](dberr.Translate(err, ""))
	if !ok || pe.Kind != problem.Unavailable || pe.Header.Get("Retry-After") == "" {
		t.Errorf("dberr.Translate(%v) = %v, want a 503 with Retry-After", err, dberr.Translate(err, ""))
	}
}

// The wait for a connection is bounded too, when every connection is busy.
func TestBoundAcquire(t *testing.T) {
	t.Parallel()
	p := boundedPool(t, 1)
	held, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	marked := dbtimeout.Bound(context.Background(), bound)
	started := time.Now()
	_, err = p.Exec(marked, "SELECT 1")
	checkUnavailable(t, err, time.Since(started))
	held.Release()
	if _, err := p.Exec(marked, "SELECT 1"); err != nil {
		t.Errorf("once the connection is back: %v", err)
	}
}

// A statement past its bound stops on the server too: pgx sends a cancel
// request, so PostgreSQL does not run it on for nobody, whether it ran
// alone or in a transaction.
func TestBoundCancelsOnTheServer(t *testing.T) {
	t.Parallel()
	p := boundedPool(t, 2)
	marked := dbtimeout.Bound(context.Background(), bound)
	for _, tt := range []struct {
		name string
		call func(ctx context.Context, sql string) error
	}{
		{"alone", func(ctx context.Context, sql string) error {
			_, err := p.Exec(ctx, sql)
			return err
		}},
		{"in a transaction", func(ctx context.Context, sql string) error {
			return pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, sql)
				return err
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tag := "rolegate-cancel-" + strings.ReplaceAll(tt.name, " ", "-")
			sql := "SELECT pg_sleep(30) /* " + tag + " */"
			started := time.Now()
			checkUnavailable(t, tt.call(marked, sql), time.Since(started))
			// Another connection watches pg_stat_activity for the statement.
			watch := testdb.New(t)
			var running int
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := watch.QueryRow(context.Background(),
					"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()", tag).Scan(&running)
				if err != nil {
					t.Fatal(err)
				}
				if running == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if running != 0 {
				t.Fatalf("the statement still runs on the server %v after its bound", time.Since(started))
			}
		})
	}
}
