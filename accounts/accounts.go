// Package accounts creates user accounts: from the command line, for the
// first administrator of an empty database, and (later) through the API.
package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/password"
	"github.com/rolegate/rolegate/problem"
)

// Hasher hashes new passwords.
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
}

// MinPasswordLen is the shortest password a new account may have.
const MinPasswordLen = 12

// BootstrapEmail is the first administrator's login.
const BootstrapEmail = "admin@localhost"

// Create makes an account holding roles, which must exist, in one
// transaction. It returns a Conflict error when the email is taken
// (regardless of case) and an Invalid one for an unknown role or a password
// that is too short or too long.
func Create(ctx context.Context, pool *pgxpool.Pool, h Hasher, email, pw string, roles []string) (db.CreateUserRow, error) {
	var row db.CreateUserRow
	if n := len(pw); n < MinPasswordLen || n > password.MaxPasswordLen {
		return row, problem.New(problem.Invalid, fmt.Sprintf("The password must be %d to %d bytes long.", MinPasswordLen, password.MaxPasswordLen))
	}
	hash, err := h.Hash(ctx, pw)
	if err != nil {
		return row, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return create(ctx, db.New(tx), email, hash, roles, &row)
	})
	return row, err
}

func create(ctx context.Context, q *db.Queries, email, hash string, roles []string, row *db.CreateUserRow) error {
	var err error
	*row, err = q.CreateUser(ctx, db.CreateUserParams{Email: email, PasswordHash: hash})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return problem.Wrap(problem.Conflict, "An account with this email exists.", err)
	}
	if err != nil {
		return err
	}
	if err := q.GrantRoles(ctx, db.GrantRolesParams{UserID: row.ID, Names: roles}); err != nil {
		return err
	}
	got, err := q.ListUserRoles(ctx, row.ID)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if !slices.Contains(got, r) {
			return problem.New(problem.Invalid, fmt.Sprintf("There is no role %q.", r))
		}
	}
	return nil
}

// bootstrapLock serialises the first-start check across replicas.
const bootstrapLock int64 = 0x3f1b6a5d2c4e7a1a

// Bootstrap creates the first administrator, BootstrapEmail with the admin
// role, when the database has no account at all; replicas starting together
// create it once. The password is pw or, when pw is empty, a generated one
// that is returned so that it can be shown once. created is false when
// accounts already existed.
func Bootstrap(ctx context.Context, pool *pgxpool.Pool, h Hasher, pw string) (created bool, generated string, err error) {
	if pw == "" {
		generated = rand.Text()
		pw = generated
	}
	if len(pw) < MinPasswordLen {
		return false, "", fmt.Errorf("ROLEGATE_ADMIN_PASSWORD must be at least %d bytes", MinPasswordLen)
	}
	// Hashing takes a while: do it outside the transaction and its lock.
	hash, err := h.Hash(ctx, pw)
	if err != nil {
		return false, "", err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", bootstrapLock); err != nil {
			return err
		}
		q := db.New(tx)
		exists, err := q.AnyUserExists(ctx)
		if err != nil || exists {
			return err
		}
		if err := q.EnsureRoles(ctx, []string{"admin"}); err != nil {
			return err
		}
		var row db.CreateUserRow
		if err := create(ctx, q, BootstrapEmail, hash, []string{"admin"}, &row); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil || !created {
		return false, "", err
	}
	return true, generated, nil
}

// ParseRoles splits a comma-separated role list, dropping blanks and
// duplicates.
func ParseRoles(s string) []string {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}
