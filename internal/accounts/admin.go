package accounts

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/problem"
)

// AdminRole is the role that administers accounts and roles, sees every
// user's notes and documents, and of which at least one enabled holder
// always remains.
const AdminRole = "admin"

// ErrNotAdmin reports a caller whose account no longer exists, is disabled,
// or no longer holds AdminRole, although its token says otherwise: the
// token was issued before the change.
var ErrNotAdmin = errors.New("accounts: the caller is no longer an enabled administrator")

// ErrLastAdmin reports a change that would leave no enabled administrator.
var ErrLastAdmin = problem.New(problem.Conflict, "At least one enabled administrator must remain.")

// AsAdmin runs fn in one transaction on behalf of caller, an administrator
// by its token, for changes. Before fn it locks the admin role, so that
// every change to who administers takes its turn, and checks that caller
// still exists, is enabled and holds AdminRole (ErrNotAdmin otherwise);
// after fn it checks that an enabled administrator remains (ErrLastAdmin
// otherwise). Any error rolls the whole transaction back. Operations that
// only read need none of this: CheckAdmin alone.
func AsAdmin(ctx context.Context, pool *pgxpool.Pool, caller int64, fn func(q *db.Queries) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		role, err := q.LockRole(ctx, AdminRole)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotAdmin // without the role, nobody holds it
		}
		if err != nil {
			return err
		}
		if err := CheckAdmin(ctx, q, caller); err != nil {
			return err
		}
		if err := fn(q); err != nil {
			return err
		}
		n, err := q.CountEnabledHolders(ctx, role)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLastAdmin
		}
		return nil
	})
}

// CheckAdmin returns ErrNotAdmin unless the account id exists, is enabled
// and holds AdminRole: one query, by the account's id, and no lock. Reads
// use it alone, as the whole of their check; changes through AsAdmin.
func CheckAdmin(ctx context.Context, q *db.Queries, id int64) error {
	ok, err := q.IsEnabledHolder(ctx, db.IsEnabledHolderParams{ID: id, Role: AdminRole})
	if err == nil && !ok {
		return ErrNotAdmin
	}
	return err
}
