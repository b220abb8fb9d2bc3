package migrate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/internal/migrate"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		want    []string // step names
		wantErr string
	}{
		{"two steps", "-- preamble\n-- +step 1: one\nCREATE TABLE a ();\n-- +step 2: two\nCREATE TABLE b ();\n", []string{"one", "two"}, ""},
		{"no steps", "CREATE TABLE a ();", nil, "no '-- +step N: name' sections"},
		{"gap", "-- +step 1: one\nSELECT 1;\n-- +step 3: three\nSELECT 1;\n", nil, "out of order"},
		{"not starting at 1", "-- +step 2: two\nSELECT 1;\n", nil, "out of order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := migrate.Parse(tt.schema)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range steps {
				got = append(got, s.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("steps = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProjectSchemaParses(t *testing.T) {
	steps, err := migrate.Parse(rolegate.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || !strings.Contains(steps[0].SQL, "CREATE TABLE users") {
		t.Fatalf("step 1 does not create users: %+v", steps)
	}
}

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testdb.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Many replicas starting together against one empty database: each step is
// applied by exactly one of them, and none fails.
func TestApplyConcurrentAppliesEachStepOnce(t *testing.T) {
	t.Parallel()
	pool := open(t)
	steps, err := migrate.Parse(rolegate.Schema)
	if err != nil {
		t.Fatal(err)
	}
	const replicas = 8
	results := make([]migrate.Result, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			results[i], errs[i] = migrate.Apply(context.Background(), pool, steps, rolegate.SchemaHooks())
		})
	}
	wg.Wait()
	applied := map[int]int{}
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if results[i].Current != len(steps) {
			t.Errorf("replica %d: Current = %d, want %d", i, results[i].Current, len(steps))
		}
		for _, v := range results[i].Applied {
			applied[v]++
		}
	}
	for _, s := range steps {
		if applied[s.Version] != 1 {
			t.Errorf("step %d applied %d times, want 1", s.Version, applied[s.Version])
		}
	}
	var rows int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM schema_steps").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(steps) {
		t.Errorf("schema_steps has %d rows, want %d", rows, len(steps))
	}
}

func TestApplyAddsNewStepsAndKeepsData(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := context.Background()
	v1 := "-- +step 1: t\nCREATE TABLE t (id int PRIMARY KEY);\n"
	steps, _ := migrate.Parse(v1)
	if _, err := migrate.Apply(ctx, pool, steps, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// A restart with the same schema does nothing.
	res, err := migrate.Apply(ctx, pool, steps, nil)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("re-apply: applied %v, err %v; want nothing", res.Applied, err)
	}
	// A release that appends a step applies just that one.
	steps, _ = migrate.Parse(v1 + "-- +step 2: t.note\nALTER TABLE t ADD COLUMN note text;\n")
	res, err = migrate.Apply(ctx, pool, steps, nil)
	if err != nil || len(res.Applied) != 1 || res.Applied[0] != 2 {
		t.Fatalf("upgrade: applied %v, err %v; want [2]", res.Applied, err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM t WHERE note IS NULL").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row after upgrade: n=%d err=%v", n, err)
	}
}

func TestApplyRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1 := "-- +step 1: t\nCREATE TABLE t (id int);\n"
	v2 := v1 + "-- +step 2: u\nCREATE TABLE u (id int);\n"
	tests := []struct {
		name, first, then, wantErr string
	}{
		{"edited step", v1, "-- +step 1: t\nCREATE TABLE t (id bigint);\n", "was changed after it was applied"},
		{"database newer than binary", v2, v1, "newer than this binary"},
		{"failing step leaves nothing behind", v1, v1 + "-- +step 2: bad\nCREATE TABLE ok (id int);\nSELECT no_such_column FROM t;\n", "step 2 (bad)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := open(t)
			first, _ := migrate.Parse(tt.first)
			if _, err := migrate.Apply(ctx, pool, first, nil); err != nil {
				t.Fatal(err)
			}
			then, _ := migrate.Parse(tt.then)
			if _, err := migrate.Apply(ctx, pool, then, nil); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply error = %v, want one containing %q", err, tt.wantErr)
			}
			var leftover bool
			if err := pool.QueryRow(ctx, "SELECT to_regclass('ok') IS NOT NULL").Scan(&leftover); err != nil || leftover {
				t.Fatalf("a failed step left table ok behind (err %v)", err)
			}
		})
	}
}

// A step's hook runs in the step's transaction, after its SQL, only when the
// step is applied; its warnings come back in the Result.
func TestApplyRunsHooks(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := context.Background()
	v1 := "-- +step 1: t\nCREATE TABLE t (id int PRIMARY KEY, name text);\nINSERT INTO t (id, name) VALUES (1, 'Ada'), (2, NULL);\n"
	v2 := v1 + "-- +step 2: t.upper\nALTER TABLE t ADD COLUMN upper text;\n"
	calls := 0
	hooks := migrate.Hooks{2: func(ctx context.Context, tx pgx.Tx) ([]string, error) {
		calls++
		rows, _ := tx.Query(ctx, "SELECT id, name FROM t ORDER BY id")
		names := map[int]*string{}
		var id int
		var name *string
		if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error { names[id] = name; return nil }); err != nil {
			return nil, err
		}
		var warnings []string
		for id := 1; id <= len(names); id++ {
			if names[id] == nil {
				warnings = append(warnings, "row "+strconv.Itoa(id)+" has no name")
				continue
			}
			if _, err := tx.Exec(ctx, "UPDATE t SET upper = $1 WHERE id = $2", strings.ToUpper(*names[id]), id); err != nil {
				return nil, err
			}
		}
		return warnings, nil
	}}

	steps, _ := migrate.Parse(v1)
	if _, err := migrate.Apply(ctx, pool, steps, nil); err != nil {
		t.Fatal(err)
	}
	steps, _ = migrate.Parse(v2)
	res, err := migrate.Apply(ctx, pool, steps, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(migrate.Result{Applied: []int{2}, Current: 2, Warnings: []migrate.Warning{{Version: 2, Message: "row 2 has no name"}}}, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	var upper string
	if err := pool.QueryRow(ctx, "SELECT upper FROM t WHERE id = 1").Scan(&upper); err != nil || upper != "ADA" {
		t.Errorf("the hook's update: %q, %v; want ADA", upper, err)
	}
	// Applied steps do not run their hooks again.
	res, err = migrate.Apply(ctx, pool, steps, hooks)
	if err != nil || calls != 1 || len(res.Applied) != 0 || len(res.Warnings) != 0 {
		t.Errorf("re-apply: %+v, %v, %d hook calls; want nothing done and 1 call", res, err, calls)
	}
}

func TestApplyHookFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1 := "-- +step 1: t\nCREATE TABLE t (id int);\n"
	v2 := v1 + "-- +step 2: ok\nCREATE TABLE ok (id int);\n"
	failing := func(ctx context.Context, tx pgx.Tx) ([]string, error) {
		if _, err := tx.Exec(ctx, "INSERT INTO ok VALUES (1)"); err != nil {
			return nil, err
		}
		return []string{"not reported"}, errors.New("cannot convert")
	}
	tests := []struct {
		name    string
		hooks   migrate.Hooks
		wantErr string
	}{
		{"failing hook leaves nothing behind", migrate.Hooks{2: failing}, "step 2 (ok): cannot convert"},
		{"hook for a step the schema lacks", migrate.Hooks{3: failing}, "a hook for step 3"},
		{"hook for step 0", migrate.Hooks{0: failing}, "a hook for step 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := open(t)
			first, _ := migrate.Parse(v1)
			if _, err := migrate.Apply(ctx, pool, first, nil); err != nil {
				t.Fatal(err)
			}
			then, _ := migrate.Parse(v2)
			res, err := migrate.Apply(ctx, pool, then, tt.hooks)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply error = %v, want one containing %q", err, tt.wantErr)
			}
			if len(res.Applied) != 0 || len(res.Warnings) != 0 {
				t.Errorf("failed Apply returned %+v, want a zero Result", res)
			}
			var leftover bool
			var version int
			if err := pool.QueryRow(ctx, "SELECT to_regclass('ok') IS NOT NULL, (SELECT max(version) FROM schema_steps)").Scan(&leftover, &version); err != nil || leftover || version != 1 {
				t.Fatalf("after the failure: table ok exists %v, schema at step %d (err %v); want no table, step 1", leftover, version, err)
			}
		})
	}
}
