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
// by its token. Before fn it locks the admin role, so that every change to
// who administers takes its turn, and checks that caller still exists, is
// enabled and holds AdminRole (ErrNotAdmin otherwise); after fn it checks
// that an enabled administrator remains (ErrLastAdmin otherwise). Any error
// rolls the whole transaction back.
func AsAdmin(ctx context.Context, pool *pgxpool.Pool, caller int64, fn func(q *db.Queries) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := q.LockRole(ctx, AdminRole); err != nil {
			return err
		}
		if err := CheckAdmin(ctx, q, caller); err != nil {
			return err
		}
		if err := fn(q); err != nil {
			return err
		}
		n, err := q.CountEnabledHolders(ctx, AdminRole)
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
// and holds AdminRole. It takes no lock: reads use it alone, changes
// through AsAdmin.
func CheckAdmin(ctx context.Context, q *db.Queries, id int64) error {
	ok, err := q.IsEnabledHolder(ctx, db.IsEnabledHolderParams{ID: id, Role: AdminRole})
	if err == nil && !ok {
		return ErrNotAdmin
	}
	return err
}
