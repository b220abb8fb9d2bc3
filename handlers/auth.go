package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/email"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/httplog"
	"github.com/rolegate/rolegate/password"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Auth implements the auth tag: logging in and identifying the caller.
type Auth struct {
	Queries *db.Queries
	Hasher  *password.Pool
	Tokens  *token.Manager
}

// oauthError is an RFC 6749 section 5.2 refusal.
func oauthError(code, description string) api.CreateTokenResponseObject {
	return api.CreateToken400JSONResponse{
		Body:    api.OAuthError{Error: api.OAuthErrorError(code), ErrorDescription: &description},
		Headers: api.CreateToken400ResponseHeaders{CacheControl: "no-store", Pragma: "no-cache"},
	}
}

// errBadCredentials is the one answer to a wrong email, a wrong password and
// a disabled account, so that none can be told from another.
var errBadCredentials = oauthError("invalid_grant", "The email or password is incorrect.")

// CreateToken implements the OAuth2 password grant (RFC 6749 section 4.3).
// The username is looked up by its canonical form (email.Canonical); one
// that has none names no account. Unknown emails are checked against a
// dummy hash so that the answer takes as long as for a known one.
func (a Auth) CreateToken(ctx context.Context, req api.CreateTokenRequestObject) (api.CreateTokenResponseObject, error) {
	f := req.Body
	switch {
	case f == nil || f.GrantType == nil || *f.GrantType == "":
		return oauthError("invalid_request", "grant_type is required."), nil
	case *f.GrantType != "password":
		return oauthError("unsupported_grant_type", "Only the password grant is supported."), nil
	case f.Username == nil || *f.Username == "":
		return oauthError("invalid_request", "username is required."), nil
	case f.Password == nil || *f.Password == "":
		return oauthError("invalid_request", "password is required."), nil
	}
	user, found, err := a.findUser(ctx, *f.Username)
	if err != nil {
		return nil, err
	}
	if !found {
		if err := a.Hasher.VerifyDummy(ctx, *f.Password); err != nil {
			return nil, hashError(err)
		}
		return errBadCredentials, nil
	}
	ok, rehash, err := a.Hasher.Verify(ctx, user.PasswordHash, *f.Password)
	if errors.Is(err, password.ErrMalformedHash) {
		httplog.Logger(ctx).Error("login: stored password hash is malformed", "user_id", user.ID)
		return errBadCredentials, nil
	}
	if err != nil {
		return nil, hashError(err)
	}
	if !ok || user.Disabled {
		return errBadCredentials, nil
	}
	if rehash {
		a.upgradeHash(ctx, user.ID, user.PasswordHash, *f.Password)
	}
	raw, _, err := a.Tokens.Issue(user.ID, user.Email, user.Roles)
	if err != nil {
		return nil, err
	}
	return api.CreateToken200JSONResponse{
		Body: api.Token{
			AccessToken: raw,
			TokenType:   api.Bearer,
			ExpiresIn:   int(a.Tokens.TTL().Seconds()),
		},
		Headers: api.CreateToken200ResponseHeaders{CacheControl: "no-store", Pragma: "no-cache"},
	}, nil
}

// findUser returns the account whose email has the canonical form of
// username; found is false when there is none, or username has no canonical
// form.
func (a Auth) findUser(ctx context.Context, username string) (user db.GetUserWithRolesByCanonicalEmailRow, found bool, err error) {
	key, err := email.Canonical(username)
	if err != nil {
		return user, false, nil
	}
	user, err = a.Queries.GetUserWithRolesByCanonicalEmail(ctx, key)
	if errors.Is(err, pgx.ErrNoRows) {
		return user, false, nil
	}
	return user, err == nil, err
}

// upgradeHash replaces an outdated hash (bcrypt from an imported app, or
// weaker argon2id parameters) after a successful login. A failure is logged
// and the login goes on: the old hash still works.
func (a Auth) upgradeHash(ctx context.Context, id int64, old, pw string) {
	h, err := a.Hasher.Hash(ctx, pw)
	if err == nil {
		_, err = a.Queries.UpdatePasswordHash(ctx, db.UpdatePasswordHashParams{ID: id, OldHash: old, NewHash: h})
	}
	if err != nil {
		httplog.Logger(ctx).Warn("login: could not upgrade password hash", "user_id", id, "err", err)
	}
}

// hashError maps a saturated hashing pool to 503 with Retry-After.
func hashError(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return &problem.Error{Kind: problem.Unavailable, Detail: "Too many passwords are being hashed at once; retry shortly.",
			Header: http.Header{"Retry-After": {"1"}}, Err: err}
	}
	return err
}

// GetMe returns the caller's identity as its token states it.
func (Auth) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	c := access.Caller(ctx)
	return api.GetMe200JSONResponse{Id: c.UserID, Email: c.Email, Roles: c.Roles}, nil
}
