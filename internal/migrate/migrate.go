// Package migrate applies rolegate's schema to a PostgreSQL database in
// numbered steps, safely when several replicas start at the same moment.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Step is one numbered change of the schema.
type Step struct {
	Version int
	Name    string
	SQL     string
}

// Checksum identifies the step's text, so that an edit of a step that was
// already applied is noticed rather than silently ignored.
func (s Step) Checksum() string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(s.SQL)))
	return hex.EncodeToString(sum[:])
}

var stepHeader = regexp.MustCompile(`(?m)^-- \+step (\d+): *(.*)$`)

// Parse splits a schema file into its steps. Text before the first
// "-- +step N: name" line is a preamble and ignored. Versions must start at 1
// and increase by one.
func Parse(schema string) ([]Step, error) {
	marks := stepHeader.FindAllStringSubmatchIndex(schema, -1)
	if len(marks) == 0 {
		return nil, errors.New("migrate: schema has no '-- +step N: name' sections")
	}
	steps := make([]Step, 0, len(marks))
	for i, m := range marks {
		end := len(schema)
		if i+1 < len(marks) {
			end = marks[i+1][0]
		}
		v, err := strconv.Atoi(schema[m[2]:m[3]])
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("migrate: step %q is out of order: want version %d", schema[m[2]:m[3]], i+1)
		}
		steps = append(steps, Step{
			Version: v,
			Name:    strings.TrimSpace(schema[m[4]:m[5]]),
			SQL:     schema[m[1]:end],
		})
	}
	return steps, nil
}

// lockKey is the advisory lock that serialises schema changes across
// replicas. It is an arbitrary constant that every release must keep, so
// that old and new replicas exclude each other; other advisory locks of
// rolegate use other constants.
const lockKey int64 = 0x3f1b6a5d2c4e7a19

// Hook is Go code that belongs to a step: work that SQL cannot express, such
// as filling a new column with values computed in Go. Apply runs it in the
// step's transaction, after the step's SQL and before the step is recorded,
// and only when it applies the step. It sees the schema as of its step, not
// the latest one, so it should use its own SQL rather than generated
// queries. Its warnings (say, rows it could not convert) are returned in
// Result; an error undoes the step and everything else Apply did.
type Hook func(ctx context.Context, tx pgx.Tx) (warnings []string, err error)

// Hooks are a schema's hooks by step version.
type Hooks map[int]Hook

// Warning is something a step's hook reported while Apply applied the step.
type Warning struct {
	Version int
	Message string
}

// Result says what Apply did.
type Result struct {
	Applied  []int // versions applied by this call, in order
	Current  int   // the schema version after the call
	Warnings []Warning
}

// Apply brings the database to the last step. It runs in one transaction
// that first takes a transaction-scoped advisory lock, so that concurrent
// callers wait for each other and every step is applied exactly once; a
// failing step leaves the database as it was. Apply refuses to run when the
// database holds a step this binary does not know (a newer release migrated
// it), a step whose text has changed since it was applied, or a hook for a
// step that steps lacks. Each step that Apply applies runs its hook from
// hooks, if any, in the same transaction.
func Apply(ctx context.Context, pool *pgxpool.Pool, steps []Step, hooks Hooks) (Result, error) {
	for v := range hooks {
		if v < 1 || v > len(steps) {
			return Result{}, fmt.Errorf("migrate: a hook for step %d, which the schema does not have", v)
		}
	}
	var res Result
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_steps (
	version    integer PRIMARY KEY,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("migrate: bookkeeping table: %w", err)
		}
		applied, err := appliedSteps(ctx, tx)
		if err != nil {
			return err
		}
		for v, sum := range applied {
			if v > len(steps) {
				return fmt.Errorf("migrate: the database is at schema step %d, newer than this binary's %d", v, len(steps))
			}
			if want := steps[v-1].Checksum(); sum != want {
				return fmt.Errorf("migrate: schema step %d was changed after it was applied; add a new step instead", v)
			}
		}
		for _, s := range steps {
			if _, ok := applied[s.Version]; ok {
				continue
			}
			// No arguments: pgx sends the simple protocol, which runs several statements.
			if _, err := tx.Exec(ctx, s.SQL); err != nil {
				return fmt.Errorf("migrate: step %d (%s): %w", s.Version, s.Name, err)
			}
			if hook := hooks[s.Version]; hook != nil {
				warnings, err := hook(ctx, tx)
				if err != nil {
					return fmt.Errorf("migrate: step %d (%s): %w", s.Version, s.Name, err)
				}
				for _, w := range warnings {
					res.Warnings = append(res.Warnings, Warning{Version: s.Version, Message: w})
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_steps (version, name, checksum) VALUES ($1, $2, $3)",
				s.Version, s.Name, s.Checksum()); err != nil {
				return fmt.Errorf("migrate: record step %d: %w", s.Version, err)
			}
			res.Applied = append(res.Applied, s.Version)
		}
		res.Current = len(steps)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

func appliedSteps(ctx context.Context, tx pgx.Tx) (map[int]string, error) {
	rows, err := tx.Query(ctx, "SELECT version, checksum FROM schema_steps")
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied steps: %w", err)
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read applied steps: %w", err)
		}
		applied[v] = sum
	}
	return applied, rows.Err()
}
