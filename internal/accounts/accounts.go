// Package accounts holds the rules of user accounts: creating one (from the
// command line, through the API, and the first administrator of an empty
// database), the canonical email under which an account is unique, and the
// administrator's rules (AsAdmin): a caller is checked against its account,
// not only its token, and an enabled administrator always remains.
package accounts

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/problem"
)

// Hasher hashes new passwords.
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
}

// BootstrapEmail is the first administrator's login.
const BootstrapEmail = "admin@localhost"

// Create makes an account holding roles, which must exist, in one
// transaction. It returns a Conflict error when an account's email has the
// same canonical form (email.Canonical), and an Invalid one for an address
// without a canonical form, an unknown role or a password that
// password.CheckNew refuses.
func Create(ctx context.Context, pool *pgxpool.Pool, h Hasher, addr, pw string, roles []string) (db.CreateUserRow, error) {
	return createIn(ctx, h, addr, pw, roles, func(fn func(*db.Queries) error) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(db.New(tx)) })
	})
}

// CreateAsAdmin is Create on behalf of caller, in the transaction of
// AsAdmin: it also returns ErrNotAdmin when caller is no longer an enabled
// administrator.
func CreateAsAdmin(ctx context.Context, pool *pgxpool.Pool, h Hasher, caller int64, addr, pw string, roles []string) (db.CreateUserRow, error) {
	return createIn(ctx, h, addr, pw, roles, func(fn func(*db.Queries) error) error {
		return AsAdmin(ctx, pool, caller, fn)
	})
}

// createIn checks and hashes the new account's password outside any
// transaction, since hashing is slow, then inserts the account in the
// transaction that inTx runs.
func createIn(ctx context.Context, h Hasher, addr, pw string, roles []string, inTx func(func(*db.Queries) error) error) (db.CreateUserRow, error) {
	var row db.CreateUserRow
	if err := CheckPassword(pw, "body.password"); err != nil {
		return row, err
	}
	key, err := canonicalEmail(addr)
	if err != nil {
		return row, err
	}
	hash, err := h.Hash(ctx, pw)
	if err != nil {
		return row, err
	}
	err = inTx(func(q *db.Queries) error {
		return create(ctx, q, db.CreateUserParams{Email: addr, CanonicalEmail: key, PasswordHash: hash}, roles, &row)
	})
	return row, err
}

// CreateHashed inserts an account whose password is hashed already, with
// roles, in q's transaction: sign-up, which hashes before it knows whether
// the address is taken, so that both answers take as long.
func CreateHashed(ctx context.Context, q *db.Queries, addr, key, hash string, roles []string) (db.CreateUserRow, error) {
	var row db.CreateUserRow
	return row, create(ctx, q, db.CreateUserParams{Email: addr, CanonicalEmail: key, PasswordHash: hash}, roles, &row)
}

// CanonicalEmail is email.Canonical, refusing as the API's body.email.
func CanonicalEmail(addr string) (string, error) { return canonicalEmail(addr) }

// canonicalEmail is email.Canonical, refusing as the API's body.email.
func canonicalEmail(addr string) (string, error) {
	key, err := email.Canonical(addr)
	if err != nil {
		msg := err.Error()
		return "", &problem.Error{Kind: problem.Invalid, Detail: strings.ToUpper(msg[:1]) + msg[1:] + ".",
			Fields: []api.FieldError{{Field: "body.email", Message: msg}}, Err: err}
	}
	return key, nil
}

// create inserts the account of p, whose CanonicalEmail is its Email's
// canonical form, and grants it roles.
func create(ctx context.Context, q *db.Queries, p db.CreateUserParams, roles []string, row *db.CreateUserRow) error {
	var err error
	*row, err = q.CreateUser(ctx, p)
	if err != nil {
		return dberr.Translate(err, "")
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
// role and counted as verified, when the database has no account at all; replicas starting together
// create it once. The password is pw or, when pw is empty, a generated one
// that is returned so that it can be shown once. created is false when
// accounts already existed.
func Bootstrap(ctx context.Context, pool *pgxpool.Pool, h Hasher, pw string) (created bool, generated string, err error) {
	if pw == "" {
		generated = rand.Text()
		pw = generated
	}
	if err := password.CheckNew(pw); err != nil {
		return false, "", fmt.Errorf("ROLEGATE_ADMIN_PASSWORD %w", err)
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
		if err := q.EnsureRoles(ctx, []string{AdminRole}); err != nil {
			return err
		}
		var row db.CreateUserRow
		// BootstrapEmail is its own canonical form (TestBootstrapEmailIsCanonical).
		p := db.CreateUserParams{Email: BootstrapEmail, CanonicalEmail: BootstrapEmail, PasswordHash: hash}
		if err := create(ctx, q, p, []string{AdminRole}, &row); err != nil {
			return err
		}
		// admin@localhost has no mailbox: it counts as verified, so that
		// ROLEGATE_REQUIRE_VERIFIED_EMAIL does not lock it out.
		if _, err := q.VerifyEmail(ctx, db.VerifyEmailParams{ID: row.ID, MailedTo: BootstrapEmail}); err != nil {
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

// CheckPassword is password.CheckNew for a new password given in field: a
// refusal is an Invalid problem naming the field and the rule.
func CheckPassword(pw, field string) error {
	if err := password.CheckNew(pw); err != nil {
		return &problem.Error{Kind: problem.Invalid, Detail: "The password " + err.Error() + ".",
			Fields: []api.FieldError{{Field: field, Message: err.Error()}}, Err: err}
	}
	return nil
}
