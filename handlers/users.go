package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/problem"
)

// Users implements the users tag: account and role administration.
//
// The gate has admitted only admins, by their tokens. Since a token
// outlives changes to its account, each operation checks again that the
// caller still is an enabled admin (401 invalid_token otherwise): a read
// with one query and no lock (readAsAdmin), a change in its own
// transaction, with the admin set locked so that an enabled admin always
// remains (409), also under concurrent changes; see accounts.AsAdmin.
type Users struct {
	Pool      *pgxpool.Pool
	Queries   *db.Queries
	Hasher    *password.Pool
	SpecRoles []string
	// Store holds the bytes of the documents of users being deleted.
	Store *documents.Store
	// Sessions ends sessions and revokes tokens on account changes.
	Sessions *sessions.Service
	Audit    *audit.Log
	// Passkeys removes passkeys with the other factors; nil when off.
	Passkeys *passkey.Service
}

// CreateUser creates an account holding the given roles. Returns 400 for a
// role that does not exist, an email without a canonical form or a password
// the policy refuses, 409 when an account's email has the same canonical
// form, and 503 with Retry-After when every hashing worker is busy.
func (u Users) CreateUser(ctx context.Context, req api.CreateUserRequestObject) (api.CreateUserResponseObject, error) {
	b := req.Body
	row, err := accounts.CreateAsAdmin(ctx, u.Pool, u.Hasher, access.Caller(ctx).UserID, string(b.Email), b.Password, b.Roles)
	if err != nil {
		return nil, accountError(err)
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.UserCreated, SubjectUserID: row.ID, Subject: userSubject(row.ID), Detail: "roles: " + strings.Join(b.Roles, ",")})
	return api.CreateUser201JSONResponse{
		Body:    createdUserBody(row, b.Roles),
		Headers: api.CreateUser201ResponseHeaders{Location: "/users/" + strconv.FormatInt(row.ID, 10)},
	}, nil
}

// ListUsers returns a page of accounts in id order, only those holding
// params.role when it is set. Returns 400 for a cursor it did not issue.
func (u Users) ListUsers(ctx context.Context, req api.ListUsersRequestObject) (api.ListUsersResponseObject, error) {
	if err := u.checkAdmin(ctx); err != nil {
		return nil, err
	}
	p := req.Params
	cur, _, err := page.Parse(p.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(p.Limit)
	// One row more than the page tells whether there is a next page.
	var rows []db.ListUsersWithRolesRow
	if p.Role != nil {
		var held []db.ListRoleHoldersRow
		held, err = u.Queries.ListRoleHolders(ctx, db.ListRoleHoldersParams{Role: *p.Role, AfterID: cur.ID, MaxRows: limit + 1})
		rows = make([]db.ListUsersWithRolesRow, len(held))
		for i, r := range held {
			rows[i] = db.ListUsersWithRolesRow(r)
		}
	} else {
		rows, err = u.Queries.ListUsersWithRoles(ctx, db.ListUsersWithRolesParams{
			AfterID: cur.ID, // 0 on the first page
			MaxRows: limit + 1,
		})
	}
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, limit, userPosition, listedUserBody)
	return api.ListUsers200JSONResponse{Items: items, NextCursor: next}, nil
}

// userPosition is an account's place in its list: in id order.
func userPosition(r db.ListUsersWithRolesRow) page.Cursor { return page.Cursor{ID: r.ID} }

// GetUser returns an account with its roles. Returns 404 when there is no
// such account.
func (u Users) GetUser(ctx context.Context, req api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	if err := u.checkAdmin(ctx); err != nil {
		return nil, err
	}
	row, err := u.Queries.GetUserWithRoles(ctx, req.Id)
	if err != nil {
		return nil, userError(err)
	}
	return api.GetUser200JSONResponse(userBody(row)), nil
}

// SetUserRoles replaces an account's roles with the given set, in one
// transaction. Returns 400 for a role that does not exist, 404 when there is
// no such account, and 409 when callers would remove their own admin role
// or no enabled admin would remain.
func (u Users) SetUserRoles(ctx context.Context, req api.SetUserRolesRequestObject) (api.SetUserRolesResponseObject, error) {
	roles := req.Body.Roles
	var row db.GetUserWithRolesRow
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		if req.Id == access.Caller(ctx).UserID && !slices.Contains(roles, accounts.AdminRole) {
			return problem.New(problem.Conflict, "You cannot remove your own admin role.")
		}
		// Touching the row first locks it: concurrent replacements of the
		// same account's roles take turns.
		n, err := q.TouchUser(ctx, req.Id)
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.NotFound, userNotFound)
		}
		before, err := q.ListUserRoles(ctx, req.Id)
		if err != nil {
			return err
		}
		if err := q.DeleteUserRoles(ctx, req.Id); err != nil {
			return err
		}
		if err := q.GrantRoles(ctx, db.GrantRolesParams{UserID: req.Id, Names: roles}); err != nil {
			return err
		}
		if row, err = q.GetUserWithRoles(ctx, req.Id); err != nil {
			return err
		}
		// GrantRoles skips names without a role; finding one undoes it all.
		for i, r := range roles {
			if !slices.Contains(row.Roles, r) {
				return &problem.Error{Kind: problem.Invalid, Detail: fmt.Sprintf("There is no role %q.", r),
					Fields: []api.FieldError{{Field: "body.roles." + strconv.Itoa(i), Message: "is not a role"}}}
			}
		}
		if slices.Equal(before, row.Roles) {
			return nil
		}
		// Tokens issued before say the old roles: they stop working, and
		// the account's next refresh gets the new ones.
		return u.Sessions.RevokeUser(ctx, q, req.Id, false)
	})
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.UserRolesChanged, SubjectUserID: req.Id, Subject: userSubject(req.Id), Detail: "roles: " + strings.Join(row.Roles, ",")})
	return api.SetUserRoles200JSONResponse(userBody(row)), nil
}

// DisableUser stops an account from logging in; tokens already issued stay
// valid until they expire, except for account administration. Returns 404
// when there is no such account and 409 when callers would disable
// themselves or no enabled admin would remain.
func (u Users) DisableUser(ctx context.Context, req api.DisableUserRequestObject) (api.DisableUserResponseObject, error) {
	row, err := u.setDisabled(ctx, req.Id, true)
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.UserDisabled, SubjectUserID: req.Id, Subject: userSubject(req.Id)})
	return api.DisableUser200JSONResponse(userBody(row)), nil
}

// EnableUser lets a disabled account log in again. Returns 404 when there is
// no such account and 409 for the caller's own account, as DisableUser does:
// an admin whose token outlived their disabling cannot undo it.
func (u Users) EnableUser(ctx context.Context, req api.EnableUserRequestObject) (api.EnableUserResponseObject, error) {
	row, err := u.setDisabled(ctx, req.Id, false)
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.UserEnabled, SubjectUserID: req.Id, Subject: userSubject(req.Id)})
	return api.EnableUser200JSONResponse(userBody(row)), nil
}

// setDisabled sets another account's disabled flag and returns the account.
func (u Users) setDisabled(ctx context.Context, id int64, disabled bool) (db.GetUserWithRolesRow, error) {
	var row db.GetUserWithRolesRow
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		if id == access.Caller(ctx).UserID {
			verb := "enable"
			if disabled {
				verb = "disable"
			}
			return problem.New(problem.Conflict, "You cannot "+verb+" your own account.")
		}
		n, err := q.SetUserDisabled(ctx, db.SetUserDisabledParams{ID: id, Disabled: disabled})
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.NotFound, userNotFound)
		}
		if row, err = q.GetUserWithRoles(ctx, id); err != nil {
			return err
		}
		if !disabled {
			return nil // tokens refused when it was disabled stay refused
		}
		if err := u.Sessions.EndAll(ctx, q, id, ""); err != nil {
			return err
		}
		return u.Sessions.RevokeUser(ctx, q, id, false)
	})
	return row, err
}

// DeleteUser deletes an account with its roles and notes. Returns 404 when
// there is no such account and 409 when callers would delete themselves or
// no enabled admin would remain.
func (u Users) DeleteUser(ctx context.Context, req api.DeleteUserRequestObject) (api.DeleteUserResponseObject, error) {
	// Their notes and documents go by cascade; the documents' bytes are
	// removed once the rows are gone. The row lock keeps an upload racing
	// with the deletion from adding a document in between.
	var keys []string
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		if req.Id == access.Caller(ctx).UserID {
			return problem.New(problem.Conflict, "You cannot delete your own account.")
		}
		n, err := q.LockUser(ctx, req.Id)
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.NotFound, userNotFound)
		}
		// An organization keeps an owner: not its last one's deletion.
		if _, err := q.LockOrgsOwnedBy(ctx, req.Id); err != nil {
			return err
		}
		if only, err := q.OrgsOnlyOwnedBy(ctx, req.Id); err != nil {
			return err
		} else if len(only) > 0 {
			return problem.New(problem.Conflict, fmt.Sprintf("The account is the only owner of organization %d: make another member owner, or delete the organization, first.", only[0]))
		}
		if keys, err = q.ListUserBlobKeys(ctx, req.Id); err != nil {
			return err
		}
		if _, err = q.DeleteUser(ctx, req.Id); err != nil {
			return err
		}
		// Its sessions went with it; its access tokens go now.
		return u.Sessions.RevokeUser(ctx, q, req.Id, true)
	})
	if err != nil {
		return nil, err
	}
	removeBlobs(ctx, u.Store, keys)
	u.Audit.Record(ctx, audit.Event{Type: audit.UserDeleted, SubjectUserID: req.Id, Subject: userSubject(req.Id)})
	return api.DeleteUser204Response{}, nil
}

// EndUserSessions signs an account out everywhere: every session of it
// ends, with its access tokens. Returns 404 when there is no such account.
func (u Users) EndUserSessions(ctx context.Context, req api.EndUserSessionsRequestObject) (api.EndUserSessionsResponseObject, error) {
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		n, err := q.LockUser(ctx, req.Id)
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.NotFound, userNotFound)
		}
		return u.Sessions.EndAll(ctx, q, req.Id, "")
	})
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.SessionEnded, SubjectUserID: req.Id, Subject: userSubject(req.Id), Detail: "signed out everywhere"})
	return api.EndUserSessions204Response{}, nil
}

// ListRoles returns every role by name.
func (u Users) ListRoles(ctx context.Context, _ api.ListRolesRequestObject) (api.ListRolesResponseObject, error) {
	if err := u.checkAdmin(ctx); err != nil {
		return nil, err
	}
	rows, err := u.Queries.ListRoles(ctx)
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	out := make(api.ListRoles200JSONResponse, len(rows))
	for i, r := range rows {
		out[i] = roleBody(r)
	}
	return out, nil
}

// CreateRole creates a role that no account holds yet. Returns 409 when a
// role of that name exists.
func (u Users) CreateRole(ctx context.Context, req api.CreateRoleRequestObject) (api.CreateRoleResponseObject, error) {
	var row db.Role
	err := u.asAdmin(ctx, func(q *db.Queries) (err error) {
		row, err = q.CreateRole(ctx, req.Body.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.RoleCreated, Subject: "role:" + row.Name})
	return api.CreateRole201JSONResponse(roleBody(row)), nil
}

// DeleteRole deletes a role and takes it from every account and machine
// client holding it, as a change of their roles: their tokens issued
// before are refused at once, on every replica. Returns 404 when there is
// no such role and 409 when the spec names it in an x-roles list, since
// the operations it admits to would admit nobody new.
func (u Users) DeleteRole(ctx context.Context, req api.DeleteRoleRequestObject) (api.DeleteRoleResponseObject, error) {
	if slices.Contains(u.SpecRoles, req.Name) {
		return nil, problem.New(problem.Conflict, "The API spec names this role.")
	}
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		// Locked, the role can be granted to nobody else meanwhile: its
		// holders now are all there will be.
		if _, err := q.LockRole(ctx, req.Name); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return problem.New(problem.NotFound, roleNotFound)
			}
			return err
		}
		if err := u.Sessions.RevokeRole(ctx, q, req.Name); err != nil {
			return err
		}
		_, err := q.DeleteRole(ctx, req.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.RoleDeleted, Subject: "role:" + req.Name})
	return api.DeleteRole204Response{}, nil
}

// asAdmin runs fn in one transaction for the calling admin, as
// accounts.AsAdmin does, and translates its errors.
func (u Users) asAdmin(ctx context.Context, fn func(q *db.Queries) error) error {
	return asAdmin(ctx, u.Pool, u.Sessions, fn)
}

// asAdmin runs fn in one transaction for the calling admin, as
// accounts.AsAdmin does, catches this replica's revocations up once it
// commits (the change may have revoked tokens), and translates its errors.
func asAdmin(ctx context.Context, pool *pgxpool.Pool, sess *sessions.Service, fn func(q *db.Queries) error) error {
	err := accounts.AsAdmin(ctx, pool, access.Caller(ctx).UserID, fn)
	if err == nil {
		sess.Sync(ctx)
	}
	return userError(err)
}

// checkAdmin is readAsAdmin for the users tag.
func (u Users) checkAdmin(ctx context.Context) error { return readAsAdmin(ctx, u.Queries) }

// readAsAdmin is the caller check of asAdmin for operations that only read:
// the caller's account still exists, is enabled and holds admin (401
// invalid_token otherwise), checked with one query by id, outside any
// transaction and without the admin role's lock, so that reads never wait
// for each other or for changes. A read needs no last-admin guard, and
// changes nothing this replica must catch up with.
func readAsAdmin(ctx context.Context, q *db.Queries) error {
	return userError(accounts.CheckAdmin(ctx, q, access.Caller(ctx).UserID))
}

// roleNotFound is the answer for a role name that names no role.
const roleNotFound = "No such role."

// userNotFound is the answer for an account id that names no account.
const userNotFound = "No such user."

// userError translates a database error where a missing row means a
// missing account, and refuses a caller who is no longer an enabled admin as
// its token is refused.
func userError(err error) error {
	if errors.Is(err, accounts.ErrNotAdmin) {
		return problem.InvalidToken("The access token's account is no longer an enabled administrator.", err)
	}
	return dberr.Translate(err, userNotFound)
}

// accountError translates what accounts.CreateAsAdmin returns: its own
// problems as they are, a saturated hashing pool as 503, the rest as
// userError does.
func accountError(err error) error {
	if _, ok := errors.AsType[*problem.Error](err); ok {
		return err
	}
	if errors.Is(err, password.ErrBusy) {
		return hashError(err)
	}
	return userError(err)
}

// userBody converts a row into the API's User.
func userBody(r db.GetUserWithRolesRow) api.User {
	return api.User{
		Id:            r.ID,
		Email:         r.Email,
		EmailVerified: r.EmailVerified,
		Roles:         nonNil(r.Roles),
		Disabled:      r.Disabled,
		CreatedAt:     r.CreatedAt.Time,
		UpdatedAt:     r.UpdatedAt.Time,
	}
}

// listedUserBody converts a row of a page into the API's User.
func listedUserBody(r db.ListUsersWithRolesRow) api.User {
	return userBody(db.GetUserWithRolesRow(r))
}

// createdUserBody converts a new account's row and the roles it was given
// into the API's User, roles sorted as everywhere else.
func createdUserBody(r db.CreateUserRow, roles []string) api.User {
	return api.User{
		Id:        r.ID,
		Email:     r.Email,
		Roles:     nonNil(slices.Sorted(slices.Values(roles))),
		Disabled:  r.Disabled,
		CreatedAt: r.CreatedAt.Time,
		UpdatedAt: r.UpdatedAt.Time,
	}
}

// roleBody converts a row into the API's Role.
func roleBody(r db.Role) api.Role {
	return api.Role{Name: r.Name, CreatedAt: r.CreatedAt.Time}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// userSubject names an account as the audit trail's subject.
func userSubject(id int64) string { return "user:" + strconv.FormatInt(id, 10) }
