package handlers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Auth implements the auth tag: the token endpoint and revocation, and the
// caller's own identity, sessions and password.
type Auth struct {
	Pool     *pgxpool.Pool
	Queries  *db.Queries
	Hasher   *password.Pool
	Tokens   *token.Manager
	Sessions *sessions.Service
	Audit    *audit.Log
	// Hashing lets one client network hash only a few passwords at once
	// (throttle.InFlight), so that one network cannot fill the hashing
	// pool; nil lets any number through. Enter takes the client address.
	Hashing interface {
		Enter(addr string) (release func(), ok bool)
	}
	// Clients finds the clients that present themselves.
	Clients *ClientDirectory
	// PasswordGrant says whether grant_type=password is accepted
	// (ROLEGATE_PASSWORD_GRANT).
	PasswordGrant bool
	// IDTokens signs id tokens and verifies logout hints.
	IDTokens *token.IDTokens
	// Mailer queues the mails of the self-service flows.
	Mailer Mailer
	// RequireVerifiedEmail refuses sign-in to an account whose address
	// is not verified (ROLEGATE_REQUIRE_VERIFIED_EMAIL), and mails it a
	// new link.
	RequireVerifiedEmail bool
	// Sealer opens the secrets of authenticator apps.
	Sealer *mfa.Sealer
	// Passkeys runs the WebAuthn ceremonies; nil when passkeys are off.
	Passkeys *passkey.Service
}

// grants are the grant types /token accepts, by grant_type (RFC 6749
// section 4): each checks the parameters it needs and answers either the
// token response or an *oauth.Error.
var grants = map[string]func(Auth, context.Context, *api.TokenRequest) (api.CreateTokenResponseObject, error){
	"password":           Auth.passwordGrant,
	"refresh_token":      Auth.refreshGrant,
	"client_credentials": Auth.clientCredentialsGrant,
	"authorization_code": Auth.authorizationCodeGrant,
	oauth.GrantMFA:       Auth.mfaGrant,
}

// grantTypes lists the grant types of grants, sorted.
func grantTypes() []string {
	return slices.Sorted(maps.Keys(grants))
}

// CreateToken is the token endpoint: it runs the grant that grant_type
// names. The gate has applied RFC 6749's request rules (package oauth).
func (a Auth) CreateToken(ctx context.Context, req api.CreateTokenRequestObject) (api.CreateTokenResponseObject, error) {
	f := req.Body
	if f == nil || f.GrantType == nil || *f.GrantType == "" {
		return tokenError(oauth.Refuse(oauth.InvalidRequest, "grant_type is required.")), nil
	}
	grant, ok := grants[*f.GrantType]
	if !ok {
		return tokenError(oauth.Refuse(oauth.UnsupportedGrantType, "The grants are "+strings.Join(grantTypes(), ", ")+".")), nil
	}
	resp, err := grant(a, ctx, f)
	if e, ok := errors.AsType[*oauth.Error](err); ok {
		return tokenError(e), nil
	}
	return resp, err
}

// tokenError is the token endpoint's answer to a refused grant: 400, or
// 401 with a Basic challenge for bad client credentials.
func tokenError(e *oauth.Error) api.CreateTokenResponseObject {
	body := api.OAuthError{Error: api.OAuthErrorError(e.Code), ErrorDescription: &e.Description}
	if e.MFAToken != "" {
		body.MfaToken = &e.MFAToken
	}
	if e.PasskeyCeremony != "" {
		body.PasskeyCeremony, body.PasskeyOptions = &e.PasskeyCeremony, &e.PasskeyOptions
	}
	if e.Status == http.StatusTooManyRequests {
		return api.CreateToken429JSONResponse{Body: body, Headers: api.CreateToken429ResponseHeaders{
			CacheControl: "no-store", Pragma: "no-cache", RetryAfter: 1}}
	}
	if e.Status == http.StatusUnauthorized {
		return api.CreateToken401JSONResponse{Body: body, Headers: api.CreateToken401ResponseHeaders{
			CacheControl: "no-store", Pragma: "no-cache", WWWAuthenticate: `Basic realm="rolegate"`}}
	}
	return api.CreateToken400JSONResponse{
		Body:    body,
		Headers: api.CreateToken400ResponseHeaders{CacheControl: "no-store", Pragma: "no-cache"},
	}
}

// tokenResponse is a successful grant's answer, never cached: an access
// token for sub, with the scope it carries, and the session's refresh
// token, if any.
func (a Auth) tokenResponse(sub token.Subject, refresh, scope string) (api.CreateTokenResponseObject, error) {
	raw, _, err := a.Tokens.Issue(sub)
	if err != nil {
		return nil, err
	}
	body := api.Token{AccessToken: raw, TokenType: api.Bearer, ExpiresIn: int(a.Tokens.TTL().Seconds()),
		Scope: cmp.Or(scope, strings.Join(sub.Roles, " "))}
	if refresh != "" {
		body.RefreshToken = &refresh
	}
	return api.CreateToken200JSONResponse{
		Body:    body,
		Headers: api.CreateToken200ResponseHeaders{CacheControl: "no-store", Pragma: "no-cache"},
	}, nil
}

// errBadClient is the one answer to an unknown client and a wrong secret.
var errBadClient = &oauth.Error{Status: http.StatusUnauthorized, Code: oauth.InvalidClient, Description: "The client credentials are not valid."}

// client identifies the client of a token or revocation request (RFC 6749
// section 2.3.1: HTTP Basic, or client_id and client_secret in the form,
// not both); ok is false when the request names none. A public client
// names itself with client_id alone (token_endpoint_auth_method none); a
// confidential one must present its secret, and a public one must not.
// An empty Basic username is none: that is what golang.org/x/oauth2 sends
// ("Basic Og==") for a client without an id. Wrong credentials are
// errBadClient, and then c.ID is the id presented (perhaps naming no
// client), for the audit trail.
func (a Auth) client(ctx context.Context, f *api.TokenRequest) (c authorize.Client, ok bool, err error) {
	id, secret, basic := httplog.BasicAuth(ctx)
	basic = basic && id != ""
	formID, formSecret := f.ClientId != nil, f.ClientSecret != nil
	if basic {
		// RFC 6749 section 2.3.1: Basic credentials are form-encoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return authorize.Client{ID: id}, false, errBadClient
		}
	}
	public := false
	switch {
	case basic && (formSecret || formID && *f.ClientId != id):
		return c, false, oauth.Refuse(oauth.InvalidRequest, "Client credentials go in the Authorization header or in the form, not both.")
	case basic && secret == "":
		// "id:" is how golang.org/x/oauth2 (AuthStyleInHeader) names a
		// client without a secret: a public client.
		public = true
	case basic:
	case formSecret && !formID:
		return c, false, errBadClient
	case formSecret:
		id, secret = *f.ClientId, *f.ClientSecret
	case formID:
		id, public = *f.ClientId, true
	default:
		return c, false, nil
	}
	found, err := a.Clients.Lookup(ctx, id)
	if err != nil {
		return c, false, err
	}
	switch {
	case public:
		// client_id alone: a public client's, or a confidential client
		// that left its secret out.
		if found == nil || !found.Public {
			return authorize.Client{ID: id}, false, errBadClient
		}
		return *found, true, nil
	case found != nil && found.Public:
		// A public client has no secret, so any secret it sends is wrong.
		return authorize.Client{ID: id}, false, errBadClient
	}
	// Compared in constant time, and against a dummy for an unknown id,
	// so that timing tells neither.
	want := make([]byte, sha256.Size)
	if found != nil && len(found.SecretHash) == sha256.Size {
		want = found.SecretHash
	}
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], want) != 1 || found == nil {
		return authorize.Client{ID: id}, false, errBadClient
	}
	return *found, true, nil
}

// clientSubject names a client id as the audit trail's subject. The id may
// be one a caller presented, naming no client: it is cut to the length of
// a client id, as valid text.
func clientSubject(id string) string {
	id = strings.ToValidUTF8(strings.ReplaceAll(id, "\x00", ""), "")
	if len(id) > 64 {
		id = strings.ToValidUTF8(id[:64], "")
	}
	return "client:" + id
}

// requestedScope parses scope (RFC 6749 section 3.3): space-separated role
// names; nil when absent, for every role the caller holds.
func requestedScope(scope *string) []string {
	if scope == nil {
		return nil
	}
	names := strings.Fields(*scope)
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// narrow returns the roles of held that scope asks for (all of held when
// scope is nil), or invalid_scope for a role held does not have.
func narrow(held, scope []string) ([]string, error) {
	if scope == nil {
		return held, nil
	}
	for _, r := range scope {
		if !slices.Contains(held, r) {
			return nil, oauth.Refuse(oauth.InvalidScope, fmt.Sprintf("The scope asks for the role %q, which the caller does not hold.", r))
		}
	}
	return scope, nil
}

// clientCredentialsGrant is the client credentials grant (RFC 6749 section
// 4.4): a machine client gets an access token with its roles, or those of
// them its scope asks for, and no refresh token.
func (a Auth) clientCredentialsGrant(ctx context.Context, f *api.TokenRequest) (api.CreateTokenResponseObject, error) {
	c, ok, err := a.client(ctx, f)
	if err == nil && !ok {
		err = errBadClient
	}
	if errors.Is(err, errBadClient) {
		ev := audit.Event{Type: audit.LoginFailed, Detail: "invalid client credentials"}
		if c.ID != "" {
			ev.Subject = clientSubject(c.ID)
		} else {
			ev.Detail = "no client credentials"
		}
		a.Audit.Record(ctx, ev)
	}
	if err != nil {
		return nil, err
	}
	if c.Public || c.BuiltIn {
		return nil, oauth.Refuse(oauth.UnauthorizedClient, "A public client cannot use the client credentials grant.")
	}
	roles, err := narrow(c.Roles, requestedScope(f.Scope))
	if err != nil {
		return nil, err
	}
	a.Audit.Record(ctx, audit.Event{Type: audit.LoginSucceeded, Subject: clientSubject(c.ID), Detail: "client credentials"})
	return a.tokenResponse(token.Subject{ClientID: c.ID, Roles: roles, Version: c.TokenVersion}, "", "")
}

// errBadCredentials is the one answer to a wrong email, a wrong password and
// a disabled account, so that none can be told from another.
var errBadCredentials = oauth.Refuse(oauth.InvalidGrant, "The email or password is incorrect.")

// passwordGrant is the resource owner password credentials grant (RFC 6749
// section 4.3). The username is looked up by its canonical form
// (email.Canonical); one that has none names no account. Unknown emails are
// checked against a dummy hash so that the answer takes as long as for a
// known one.
func (a Auth) passwordGrant(ctx context.Context, f *api.TokenRequest) (api.CreateTokenResponseObject, error) {
	switch {
	case f.Username == nil || *f.Username == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "username is required.")
	case f.Password == nil || *f.Password == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "password is required.")
	}
	c, viaClient, err := a.client(ctx, f)
	if err != nil {
		if errors.Is(err, errBadClient) {
			a.Audit.Record(ctx, audit.Event{Type: audit.LoginFailed, Subject: *f.Username, Detail: "invalid client credentials (" + clientSubject(c.ID) + ")"})
		}
		return nil, err
	}
	if !a.PasswordGrant {
		return nil, oauth.Refuse(oauth.UnsupportedGrantType, "The password grant is turned off (ROLEGATE_PASSWORD_GRANT=off): sign in through the authorization endpoint.")
	}
	user, err := a.checkPassword(ctx, *f.Username, *f.Password)
	if err != nil {
		return nil, err
	}
	var client string
	if viaClient {
		client = c.ID
	}
	p := person{ID: user.ID, Email: user.Email, EmailVerified: user.EmailVerified, Roles: user.Roles, TokenVersion: user.TokenVersion}
	scope := requestedScope(f.Scope)
	if _, err := narrow(p.Roles, scope); err != nil {
		return nil, err
	}
	switch has, err := (Factors{a.Queries, a.Passkeys}).HasFactor(ctx, user.ID); {
	case err != nil:
		return nil, err
	case has:
		return nil, a.mfaRequired(ctx, p.ID, scope, client)
	}
	return a.signedIn(ctx, p, scope, client, pwdOnly, "")
}

// person is the account a sign-in is for, as its tokens state it.
type person struct {
	ID            int64
	Email         string
	EmailVerified bool
	Roles         []string
	TokenVersion  int64
}

// signedIn starts a session of p, who has just authenticated by the
// methods amr (RFC 8176), for client ("" for the first-party one) and
// scope (nil for every role), and answers its tokens; detail goes into
// the audit event.
func (a Auth) signedIn(ctx context.Context, p person, scope []string, client string, amr []string, detail string) (api.CreateTokenResponseObject, error) {
	roles, err := narrow(p.Roles, scope)
	if err != nil {
		return nil, err
	}
	ua, addr := httplog.Client(ctx)
	now := a.Sessions.Now().Truncate(time.Second)
	var sid, refresh string
	err = pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) (err error) {
		sc := sessions.Client{UserAgent: ua, Addr: addr, ID: client, AuthTime: now, AMR: amr}
		sid, refresh, err = a.Sessions.Start(ctx, db.New(tx), p.ID, sc, scope)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.Audit.Record(ctx, audit.Event{Type: audit.LoginSucceeded, SubjectUserID: p.ID, Subject: "session:" + sid, Detail: detail})
	return a.tokenResponse(token.Subject{UserID: p.ID, Email: p.Email, EmailVerified: p.EmailVerified, Roles: roles, Client: cmp.Or(client, FirstPartyClient),
		SessionID: sid, Version: p.TokenVersion, AMR: amr, AuthTime: now}, refresh, "")
}

// checkPassword checks a person's email and password, as the password
// grant and the sign-in page do. The username is looked up by its
// canonical form (email.Canonical); one that has none names no account.
// Unknown emails are checked against a dummy hash so that the answer takes
// as long as for a known one. Every refusal is audited and is
// errBadCredentials, whether the email, the password or the account's
// state was wrong; a full hashing pool is a 503 problem, and too many
// logins at once from the caller's network an *oauth.Error (429).
func (a Auth) checkPassword(ctx context.Context, username, pw string) (user db.GetUserWithRolesByCanonicalEmailRow, err error) {
	if a.Hashing != nil {
		_, addr := httplog.Client(ctx)
		release, ok := a.Hashing.Enter(addr)
		if !ok {
			a.Audit.Record(ctx, audit.Event{Type: audit.Throttled, Subject: username, Detail: "too many logins at once from this address"})
			return user, &oauth.Error{Status: http.StatusTooManyRequests, Code: oauth.SlowDown,
				Description: "Too many logins at once from this address; retry after 1 seconds."}
		}
		defer release()
	}
	// Under a flood the hashing pool is full: refuse before any database
	// work, so that the refusals cost next to nothing.
	if a.Hasher.Saturated() {
		return user, hashError(password.ErrBusy)
	}
	user, found, err := a.findUser(ctx, username)
	if err != nil {
		return user, err
	}
	failed := func(reason string) error {
		ev := audit.Event{Type: audit.LoginFailed, Subject: username, Detail: reason}
		if found {
			ev.SubjectUserID, ev.Subject = user.ID, "user:"+strconv.FormatInt(user.ID, 10)
		}
		a.Audit.Record(ctx, ev)
		return errBadCredentials
	}
	if !found {
		if err := a.Hasher.VerifyDummy(ctx, pw); err != nil {
			return user, hashError(err)
		}
		return user, failed("unknown account")
	}
	ok, rehash, err := a.Hasher.Verify(ctx, user.PasswordHash, pw)
	if errors.Is(err, password.ErrMalformedHash) {
		httplog.Logger(ctx).Error("login: stored password hash is malformed", "user_id", user.ID)
		return user, failed("unusable stored password hash")
	}
	if err != nil {
		return user, hashError(err)
	}
	switch {
	case !ok:
		return user, failed("wrong password")
	case user.Disabled:
		return user, failed("account disabled")
	case a.RequireVerifiedEmail && !user.EmailVerified:
		return user, a.unverified(ctx, user.ID, user.Email)
	}
	if rehash {
		a.upgradeHash(ctx, user.ID, user.PasswordHash, pw)
	}
	return user, nil
}

// errUnverified refuses the right password of an account whose address is
// not verified, while ROLEGATE_REQUIRE_VERIFIED_EMAIL is on.
var errUnverified = oauth.Refuse(oauth.InvalidGrant, "The account's email address is not verified. A mail with a link that verifies it is on its way to it (only the newest such link works): follow it, then sign in again.")

// unverified refuses the sign-in of an account whose address is not
// verified, with the right password, and mails the address a new link:
// the person may have lost the first, and an account an administrator
// created never had one. The right password forgives the account's
// failures, as a sign-in would.
func (a Auth) unverified(ctx context.Context, user int64, address string) error {
	throttle.Succeeded(ctx)
	a.Audit.Record(ctx, audit.Event{Type: audit.LoginFailed, SubjectUserID: user, Subject: userSubject(user), Detail: "email not verified: a new link mailed"})
	if _, err := a.Mailer.send(ctx, func(q *db.Queries) ([]letter, error) {
		l, err := a.Mailer.verifyLetter(ctx, q, user, address)
		return []letter{l}, err
	}); err != nil {
		return err
	}
	return errUnverified
}

// refreshGrant exchanges a refresh token for a new access token, with the
// account's roles as they are now, and the session's next refresh token
// (RFC 6749 section 6); see sessions.Service.Refresh for the refusals, all
// invalid_grant.
func (a Auth) refreshGrant(ctx context.Context, f *api.TokenRequest) (api.CreateTokenResponseObject, error) {
	if f.RefreshToken == nil || *f.RefreshToken == "" {
		return nil, oauth.Refuse(oauth.InvalidRequest, "refresh_token is required.")
	}
	c, viaClient, err := a.client(ctx, f)
	if err != nil {
		return nil, err
	}
	var asking string
	if viaClient {
		asking = c.ID
	}
	s, err := a.Sessions.Refresh(ctx, *f.RefreshToken, requestedScope(f.Scope), asking)
	if errors.Is(err, sessions.ErrInvalidScope) {
		return nil, oauth.Refuse(oauth.InvalidScope, "The scope asks for a role the session does not grant.")
	}
	if re, ok := errors.AsType[*sessions.ReusedError](err); ok {
		a.Audit.Record(ctx, audit.Event{Type: audit.RefreshReused, SubjectUserID: re.UserID, Subject: "session:" + re.SessionID,
			Detail: "a used refresh token came back; its session is ended"})
		a.Audit.Record(ctx, audit.Event{Type: audit.SessionEnded, SubjectUserID: re.UserID, Subject: "session:" + re.SessionID,
			Detail: "refresh token reused"})
	}
	if errors.Is(err, sessions.ErrInvalidGrant) {
		httplog.Logger(ctx).Info("refresh refused", "reason", err.Error())
		return nil, oauth.Refuse(oauth.InvalidGrant, "The refresh token is not valid.")
	}
	if err != nil {
		return nil, err
	}
	u := s.User
	a.Audit.Record(ctx, audit.Event{Type: audit.TokenRefreshed, SubjectUserID: u.ID, Subject: "session:" + s.SessionID})
	return a.tokenResponse(token.Subject{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Roles: s.Roles, Client: cmp.Or(s.ClientID, FirstPartyClient),
		SessionID: s.SessionID, Version: u.TokenVersion, AMR: s.AMR, AuthTime: s.AuthTime}, s.RefreshToken, "")
}

// RevokeToken revokes a refresh token or an access token (RFC 7009): it
// ends the session of either, or, for an access token of no session (a
// machine client's), refuses that one token by its jti; every replica
// refuses what it revoked at once. It answers 200 whether or not the
// token was valid. A client that presents credentials is authenticated as
// at /token (401 invalid_client for wrong ones), and a token issued to
// another client is left alone (still 200, RFC 7009 section 2.1); users'
// sessions record no client, so any caller holding one's token may end
// it. Without credentials, holding the token is proof enough.
func (a Auth) RevokeToken(ctx context.Context, req api.RevokeTokenRequestObject) (api.RevokeTokenResponseObject, error) {
	f := req.Body
	if f == nil || f.Token == nil || *f.Token == "" {
		return revokeError(oauth.Refuse(oauth.InvalidRequest, "token is required.")), nil
	}
	caller, authenticated, err := a.client(ctx, &api.TokenRequest{ClientId: f.ClientId, ClientSecret: f.ClientSecret})
	if e, ok := errors.AsType[*oauth.Error](err); ok {
		return revokeError(e), nil
	}
	if err != nil {
		return nil, err
	}
	// The hint only orders the guesses (RFC 7009 section 2.1).
	c, err := a.Tokens.Verify(*f.Token)
	switch {
	case err == nil && authenticated && c.Client != "" && c.Client != caller.ID:
		httplog.Logger(ctx).Info("revocation refused: the token was issued to another client", "client_id", caller.ID)
	case err == nil && c.SessionID == "":
		if err := a.revokeAccessToken(ctx, c); err != nil {
			return nil, err
		}
	case err == nil:
		if err := a.endSession(ctx, c.SessionID, c.UserID); err != nil {
			return nil, err
		}
	default:
		sid, user, err := a.Sessions.SessionOf(ctx, *f.Token)
		if err != nil {
			return nil, err
		}
		if sid != "" {
			if err := a.endSession(ctx, sid, user); err != nil {
				return nil, err
			}
		}
	}
	return api.RevokeToken200Response{Headers: api.RevokeToken200ResponseHeaders{CacheControl: "no-store"}}, nil
}

// endSession ends the session sid of user, revoked with one of its tokens.
func (a Auth) endSession(ctx context.Context, sid string, user int64) error {
	if err := a.Sessions.End(ctx, sid); err != nil {
		return err
	}
	a.Audit.Record(ctx, audit.Event{Type: audit.TokenRevoked, SubjectUserID: user, Subject: "session:" + sid})
	return nil
}

// revokeAccessToken refuses the access token c, of no session, by its jti.
func (a Auth) revokeAccessToken(ctx context.Context, c *token.Claims) error {
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		return a.Sessions.RevokeToken(ctx, db.New(tx), c.ID, c.ExpiresAt)
	})
	if err != nil {
		return err
	}
	a.Sessions.Sync(ctx)
	ev := audit.Event{Type: audit.TokenRevoked, SubjectUserID: c.UserID, Subject: userSubject(c.UserID), Detail: "access token " + c.ID}
	if c.ClientID != "" {
		ev.SubjectUserID, ev.Subject = 0, clientSubject(c.ClientID)
	}
	a.Audit.Record(ctx, ev)
	return nil
}

// revokeError is the revocation endpoint's answer to a refused request:
// 400, or 401 with a Basic challenge for bad client credentials.
func revokeError(e *oauth.Error) api.RevokeTokenResponseObject {
	body := api.OAuthError{Error: api.OAuthErrorError(e.Code), ErrorDescription: &e.Description}
	if e.Status == http.StatusUnauthorized {
		return api.RevokeToken401JSONResponse{Body: body, Headers: api.RevokeToken401ResponseHeaders{
			CacheControl: "no-store", Pragma: "no-cache", WWWAuthenticate: `Basic realm="rolegate"`}}
	}
	return api.RevokeToken400JSONResponse{
		Body:    body,
		Headers: api.RevokeToken400ResponseHeaders{CacheControl: "no-store", Pragma: "no-cache"},
	}
}

// ListMySessions lists the caller's live sessions, newest first, marking
// the one of the caller's token.
func (a Auth) ListMySessions(ctx context.Context, _ api.ListMySessionsRequestObject) (api.ListMySessionsResponseObject, error) {
	c := access.Caller(ctx)
	rows, err := a.Queries.ListLiveSessions(ctx, db.ListLiveSessionsParams{
		UserID: c.UserID, Now: pgtype.Timestamptz{Time: a.Sessions.Now(), Valid: true},
		IdleSince: pgtype.Timestamptz{Time: a.Sessions.IdleSince(), Valid: true},
	})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	out := make(api.ListMySessions200JSONResponse, len(rows))
	for i, r := range rows {
		out[i] = api.Session{
			Id: uuid.MustParse(r.ID), CreatedAt: r.CreatedAt.Time, LastUsedAt: r.LastUsedAt.Time, ExpiresAt: r.ExpiresAt.Time,
			IdleExpiresAt: r.LastUsedAt.Time.Add(a.Sessions.IdleTTL()), UserAgent: r.UserAgent, ClientAddr: r.ClientAddr,
			Current: r.ID == c.SessionID,
		}
	}
	return out, nil
}

// EndMySession ends one of the caller's sessions; 404 for any other.
func (a Auth) EndMySession(ctx context.Context, req api.EndMySessionRequestObject) (api.EndMySessionResponseObject, error) {
	var ok bool
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) (err error) {
		ok, err = a.Sessions.EndOwn(ctx, db.New(tx), access.Caller(ctx).UserID, req.Id.String())
		return err
	})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	a.Sessions.Sync(ctx)
	if !ok {
		return nil, problem.New(problem.NotFound, "No such session.")
	}
	a.Audit.Record(ctx, audit.Event{Type: audit.SessionEnded, SubjectUserID: access.Caller(ctx).UserID, Subject: "session:" + req.Id.String()})
	return api.EndMySession204Response{}, nil
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
	return identity{access.Caller(ctx)}, nil
}

// identity is GetMe's 200: api.GetMe200JSONResponse, written as its
// generated Visit method writes it (a test compares the two), but without
// reflection when its strings need no escaping, since nearly every client
// asks for it and it costs nothing else.
type identity struct{ c *token.Claims }

func (i identity) body() api.Identity {
	c := i.c
	if c.ClientID != "" {
		return api.Identity{Kind: api.IdentityKindClient, ClientId: &c.ClientID, Roles: c.Roles}
	}
	return api.Identity{Kind: api.IdentityKindUser, Id: &c.UserID, Email: &c.Email, EmailVerified: &c.EmailVerified, Roles: c.Roles}
}

// bodies are the buffers identities are written from.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// VisitGetMeResponse writes the identity as JSON.
func (i identity) VisitGetMeResponse(w http.ResponseWriter) error {
	if !i.plain() {
		return api.GetMe200JSONResponse(i.body()).VisitGetMeResponse(w)
	}
	bp := bodies.Get().(*[]byte)
	defer bodies.Put(bp)
	b, c := (*bp)[:0], i.c
	if c.ClientID != "" {
		b = append(append(append(b, `{"client_id":"`...), c.ClientID...), `","kind":"client","roles":[`...)
	} else {
		b = append(append(b, `{"email":"`...), c.Email...)
		b = strconv.AppendBool(append(b, `","email_verified":`...), c.EmailVerified)
		b = strconv.AppendInt(append(b, `,"id":`...), c.UserID, 10)
		b = append(b, `,"kind":"user","roles":[`...)
	}
	for n, r := range c.Roles {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), r...), '"')
	}
	b = append(b, "]}\n"...)
	*bp = b
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// plain reports whether every string of the identity is one encoding/json
// writes as it is: printable ASCII, without the quote, the backslash and
// the characters it escapes for HTML.
func (i identity) plain() bool {
	ok := func(s string) bool {
		for j := 0; j < len(s); j++ {
			if c := s[j]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
		}
		return true
	}
	if !ok(i.c.ClientID) || !ok(i.c.Email) || i.c.Roles == nil {
		return false
	}
	for _, r := range i.c.Roles {
		if !ok(r) {
			return false
		}
	}
	return true
}

// passwordAttempts bounds how often ChangeMyPassword starts over when the
// stored hash changes between reading and replacing it.
const passwordAttempts = 3

// ChangeMyPassword replaces the caller's password after checking the current
// one, and ends every other session of the caller's account. Returns 400
// when the current password is wrong, 401 when the caller's
// account no longer exists or is disabled, 409 when the password keeps
// changing while the request runs, and 503 with Retry-After when every
// hashing worker is busy.
func (a Auth) ChangeMyPassword(ctx context.Context, req api.ChangeMyPasswordRequestObject) (api.ChangeMyPasswordResponseObject, error) {
	id := access.Caller(ctx).UserID
	if err := accounts.CheckPassword(req.Body.NewPassword, "body.new_password"); err != nil {
		return nil, err
	}
	// Hashing is slow, so it runs outside any transaction; the new hash is
	// stored only if the old one is still there, since a login may have
	// upgraded it, or another change replaced it, in the meantime.
	for range passwordAttempts {
		old, err := a.Queries.GetPasswordHash(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, problem.InvalidToken("The access token's account no longer exists or is disabled.", err)
		}
		if err != nil {
			return nil, dberr.Translate(err, "")
		}
		ok, _, err := a.Hasher.Verify(ctx, old, req.Body.CurrentPassword)
		if errors.Is(err, password.ErrMalformedHash) {
			httplog.Logger(ctx).Error("password change: stored password hash is malformed", "user_id", id)
			ok, err = false, nil
		}
		if err != nil {
			return nil, hashError(err)
		}
		if !ok {
			return nil, &problem.Error{Kind: problem.Invalid, Detail: "The current password is incorrect.",
				Fields: []api.FieldError{{Field: "body.current_password", Message: "is incorrect"}}}
		}
		hash, err := a.Hasher.Hash(ctx, req.Body.NewPassword)
		if err != nil {
			return nil, hashError(err)
		}
		var n int64
		err = pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
			q := db.New(tx)
			if n, err = q.UpdatePasswordHash(ctx, db.UpdatePasswordHashParams{ID: id, OldHash: old, NewHash: hash}); n != 1 || err != nil {
				return err
			}
			// Whoever else holds a session of this account is signed out;
			// the session that made the change stays.
			return a.Sessions.EndAll(ctx, q, id, access.Caller(ctx).SessionID)
		})
		if err != nil {
			return nil, dberr.Translate(err, "")
		}
		if n == 1 {
			a.Sessions.Sync(ctx)
			a.Audit.Record(ctx, audit.Event{Type: audit.UserPasswordChanged, SubjectUserID: id, Subject: "user:" + strconv.FormatInt(id, 10)})
			return api.ChangeMyPassword204Response{}, nil
		}
	}
	return nil, problem.New(problem.Conflict, "The password changed while this request ran; try again.")
}

// authorizationCodeGrant exchanges a code from the authorization endpoint
// (RFC 6749 section 4.1.3, with PKCE): the client, authenticated or public,
// must be the code's, the redirect_uri the one it was issued for, and the
// code_verifier the one whose S256 challenge it is bound to. It starts a
// session of tokens under the browser session the person signed in with,
// which must not have ended since.
// A code presented a second time is refused and ends the session its
// first exchange started (RFC 6749 section 4.1.2).
func (a Auth) authorizationCodeGrant(ctx context.Context, f *api.TokenRequest) (api.CreateTokenResponseObject, error) {
	c, ok, err := a.client(ctx, f)
	if err == nil && !ok {
		err = errBadClient // public clients name themselves with client_id
	}
	if err != nil {
		if errors.Is(err, errBadClient) {
			a.Audit.Record(ctx, audit.Event{Type: audit.LoginFailed, Subject: clientSubject(c.ID), Detail: "authorization code: invalid client credentials"})
		}
		return nil, err
	}
	switch {
	case deref(f.Code) == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "code is required.")
	case deref(f.CodeVerifier) == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "code_verifier is required (PKCE).")
	}
	ua, addr := httplog.Client(ctx)
	var sid, refresh string
	var u db.GetSessionUserRow
	var roles []string
	var g authorize.Grant
	var reused *authorize.ReusedError
	err = pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		var err error
		g, err = authorize.Redeem(ctx, q, *f.Code, c.ID, deref(f.RedirectUri), *f.CodeVerifier, a.Sessions.Now(),
			func(g authorize.Grant) (string, error) {
				var err error
				if u, err = q.GetSessionUser(ctx, g.UserID); err != nil {
					return "", err
				}
				if u.Disabled {
					return "", fmt.Errorf("%w: the account is disabled", authorize.ErrInvalidGrant)
				}
				if roles, err = narrow(u.Roles, g.Scope.Roles); err != nil {
					return "", fmt.Errorf("%w: the account no longer holds a role of the scope", authorize.ErrInvalidGrant)
				}
				sid, refresh, err = a.Sessions.Start(ctx, q, g.UserID, sessions.Client{UserAgent: ua, Addr: addr,
					ID: c.ID, Parent: g.BrowserSession, AuthTime: g.AuthTime, AMR: g.AMR}, g.Scope.Roles)
				if errors.Is(err, sessions.ErrParentEnded) {
					// Signed out (or ended) since the code was issued.
					return "", fmt.Errorf("%w: its browser session has ended", authorize.ErrInvalidGrant)
				}
				return sid, err
			})
		if re, ok := errors.AsType[*authorize.ReusedError](err); ok {
			// The refusal commits with the session it ends.
			reused = re
			if re.SessionID == "" {
				return nil
			}
			return a.Sessions.EndIn(ctx, q, re.SessionID)
		}
		return err
	})
	if err == nil && reused != nil {
		err = reused
	}
	if re, ok := errors.AsType[*authorize.ReusedError](err); ok {
		a.Sessions.Sync(ctx)
		a.Audit.Record(ctx, audit.Event{Type: audit.SessionEnded, SubjectUserID: re.UserID, Subject: "session:" + re.SessionID,
			Detail: "authorization code reused"})
	}
	if errors.Is(err, authorize.ErrInvalidGrant) {
		httplog.Logger(ctx).Info("authorization code refused", "reason", err.Error(), "client_id", c.ID)
		return nil, oauth.Refuse(oauth.InvalidGrant, "The code is not valid: unknown, expired, used, or issued for another client, redirect_uri or code_verifier.")
	}
	if err != nil {
		return nil, err
	}
	a.Audit.Record(ctx, audit.Event{Type: audit.LoginSucceeded, SubjectUserID: u.ID, Subject: "session:" + sid, Detail: "authorization code, client " + c.ID})
	resp, err := a.tokenResponse(token.Subject{UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Roles: roles, Client: c.ID,
		SessionID: sid, Version: u.TokenVersion, AMR: g.AMR, AuthTime: g.AuthTime}, refresh, g.Scope.String(roles))
	if err != nil || !g.Scope.Has(authorize.ScopeOpenID) {
		return resp, err
	}
	return a.withIDToken(resp, g, u)
}
