// Package sessions keeps logins alive and ends them: a login starts a
// session with a refresh token; refreshing rotates the token, and presenting
// a used one again (outside a short window) ends the whole session. Every
// end, and every account change that must reach access tokens already
// issued, is written to the revocation log (package revocation) in the same
// transaction and announced with NOTIFY, so that every replica refuses the
// session's access tokens at once.
//
// Refresh tokens are 256 random bits, stored only as their SHA-256. A
// token's successor is derived from it with an HMAC under the server's key,
// so that a client that sends the same token twice at once (two tabs) gets
// the same successor twice, and the session keeps one live token, without
// the successor being stored anywhere but in its hash.
package sessions

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/mailtoken"
	"github.com/rolegate/rolegate/internal/mfa"
)

// Config sets a Service's lifetimes.
type Config struct {
	// TTL is a session's absolute lifetime from its login.
	TTL time.Duration
	// IdleTTL is how long a session lives without a refresh.
	IdleTTL time.Duration
	// ReuseWindow is how long after its use a refresh token may be used
	// again with the same answer.
	ReuseWindow time.Duration
	// AccessTTL and Leeway bound how long an access token issued before a
	// revocation may still be presented: revocations are kept that long.
	AccessTTL, Leeway time.Duration
	// Key derives successors of refresh tokens (at least 32 bytes).
	Key []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Local is this replica's revocation state, brought up to date by Sync
	// once a revocation commits, so that the very next request on this
	// replica sees it; others learn of it through the log's feed.
	Local interface {
		CatchUp(ctx context.Context, q *db.Queries) error
	}
	// Logger reports a failed Sync.
	Logger *slog.Logger
}

// Service starts, refreshes and ends sessions. It is safe for concurrent
// use.
type Service struct {
	pool *pgxpool.Pool
	cfg  Config
}

// New returns a Service over pool.
func New(pool *pgxpool.Pool, cfg Config) (*Service, error) {
	if len(cfg.Key) < 32 {
		return nil, errors.New("sessions: the key must be at least 32 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{pool: pool, cfg: cfg}, nil
}

// ErrReused is the refusal of a refresh token presented again after its
// use: its session has been ended. It wraps ErrInvalidGrant; Refresh
// returns it as a *ReusedError, which names the session and its account.
var ErrReused = fmt.Errorf("%w: a used refresh token came back; its session is ended", ErrInvalidGrant)

// ReusedError is Refresh's refusal of a reused refresh token: it ended the
// session SessionID of the account UserID. It wraps ErrReused.
type ReusedError struct {
	SessionID string
	UserID    int64
}

func (e *ReusedError) Error() string { return ErrReused.Error() + " (session " + e.SessionID + ")" }

// Unwrap returns ErrReused.
func (e *ReusedError) Unwrap() error { return ErrReused }

// ErrParentEnded is Start's refusal to start a session under a browser
// session that has ended: a code issued before a logout and exchanged
// after it must not sign the person back in.
var ErrParentEnded = errors.New("sessions: the browser session has ended")

// ErrInvalidScope is Refresh's refusal of a scope wider than the session's.
var ErrInvalidScope = errors.New("sessions: the scope asks for a role the session does not grant")

// ErrInvalidGrant is wrapped by every refusal of Refresh: an unknown,
// ended, expired or reused refresh token, or an account that is gone or
// disabled. The wrapping text is for logs only.
var ErrInvalidGrant = errors.New("sessions: the refresh token is not valid")

// Client is what a login tells of the client, kept with its session.
type Client struct {
	UserAgent string
	Addr      string
	// ID is the OAuth client the session's tokens are issued to; "" for
	// the built-in first-party client (the password grant).
	ID string
	// Parent is the browser session a client's session is started under
	// (its code exchange); "" for none.
	Parent string
	// AuthTime is when the person entered their password for the
	// session; zero for now.
	AuthTime time.Time
	// AMR is how they authenticated (RFC 8176); nil for a password.
	AMR []string
}

// Started is a new or refreshed session's state.
type Started struct {
	SessionID    string
	RefreshToken string
	User         db.GetSessionUserRow
	// Roles are the roles the refreshed access token carries: those the
	// account holds now, within the session's scope and the one asked for.
	Roles []string
	// ClientID is the client the session's tokens are issued to; "" for
	// the built-in first-party client.
	ClientID string
	// AMR and AuthTime are how and when the person authenticated for the
	// session: a refresh keeps them, and never raises them.
	AMR      []string
	AuthTime time.Time
}

// Start starts a session of user in q's transaction and returns its id and
// first refresh token. scope (nil for all) is the roles the login asked
// for, which its refreshes keep to. A session under c.Parent needs that
// session live, and locks it until the transaction ends; ErrParentEnded
// when it is not.
func (s *Service) Start(ctx context.Context, q *db.Queries, user int64, c Client, scope []string) (id, refresh string, err error) {
	now := s.cfg.Now()
	if c.Parent != "" {
		if _, err := q.LockLiveSession(ctx, c.Parent); errors.Is(err, pgx.ErrNoRows) {
			return "", "", ErrParentEnded
		} else if err != nil {
			return "", "", err
		}
	}
	p := db.CreateSessionParams{
		UserID: user, Now: ts(now), ExpiresAt: ts(now.Add(s.cfg.TTL)),
		UserAgent: truncate(c.UserAgent, 512), ClientAddr: truncate(c.Addr, 64), Scope: scope,
	}
	if c.ID != "" {
		p.ClientID = &c.ID
	}
	if c.Parent != "" {
		p.ParentID = &c.Parent
	}
	if !c.AuthTime.IsZero() {
		p.AuthTime = ts(c.AuthTime)
	}
	p.Amr = c.AMR
	id, err = q.CreateSession(ctx, p)
	if err != nil {
		return "", "", err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	refresh = base64.RawURLEncoding.EncodeToString(b[:])
	return id, refresh, q.CreateRefreshToken(ctx, db.CreateRefreshTokenParams{Hash: hash(refresh), SessionID: id, IssuedAt: ts(now)})
}

// Refresh exchanges refresh for its successor and returns the session with
// its user as they are now (roles, version). It returns an error wrapping
// ErrInvalidGrant when refresh is unknown, its session ended or expired
// (absolutely or idle), the account is disabled, or refresh was used
// before: then, unless within ReuseWindow of that use (when the same
// successor is returned again), the whole session ends, and the error is a
// *ReusedError.
//
// want (nil for the session's whole scope) narrows the roles of the new
// access token; a role outside the session's scope is ErrInvalidScope, and
// then nothing changes. Reuse is detected before want is looked at, so
// that no request can present a reused token without ending its session.
//
// client is the client that asks (authenticated, or a public client's
// client_id; "" for none): a session's tokens issued to a client are
// refreshed for that client alone (RFC 6749 section 6), and a refusal for
// another uses nothing up.
func (s *Service) Refresh(ctx context.Context, refresh string, want []string, client string) (Started, error) {
	var out Started
	var reused *ReusedError
	now := s.cfg.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		t, err := q.GetRefreshToken(ctx, hash(refresh))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: unknown", ErrInvalidGrant)
		}
		if err != nil {
			return err
		}
		switch {
		case t.EndedAt.Valid:
			return fmt.Errorf("%w: the session ended", ErrInvalidGrant)
		case !now.Before(t.ExpiresAt.Time):
			return fmt.Errorf("%w: the session expired", ErrInvalidGrant)
		case !now.Before(t.LastUsedAt.Time.Add(s.cfg.IdleTTL)):
			return fmt.Errorf("%w: the session was idle too long", ErrInvalidGrant)
		}
		if t.ClientID != nil && *t.ClientID != client {
			return fmt.Errorf("%w: issued to another client", ErrInvalidGrant)
		}
		next := s.successor(refresh)
		if t.UsedAt.Valid {
			// Used already: the same answer within the window, if its
			// successor is still the session's current token; otherwise
			// someone holds a token they should not, and the session ends,
			// whatever else the request asks.
			fresh, err := q.GetUnusedRefreshToken(ctx, db.GetUnusedRefreshTokenParams{Hash: hash(next), SessionID: t.SessionID})
			if err != nil {
				return err
			}
			if !fresh || now.Sub(t.UsedAt.Time) > s.cfg.ReuseWindow {
				reused = &ReusedError{SessionID: t.SessionID, UserID: t.UserID}
				return s.end(ctx, q, t.SessionID, now)
			}
		}
		// The scope is checked before the token is used, so that a refused
		// one uses nothing up.
		for _, r := range want {
			if t.Scope != nil && !slices.Contains(t.Scope, r) {
				return ErrInvalidScope
			}
		}
		if !t.UsedAt.Valid {
			if err := q.UseRefreshToken(ctx, db.UseRefreshTokenParams{Hash: hash(refresh), UsedAt: ts(now)}); err != nil {
				return err
			}
			if err := q.CreateRefreshToken(ctx, db.CreateRefreshTokenParams{Hash: hash(next), SessionID: t.SessionID, IssuedAt: ts(now)}); err != nil {
				return err
			}
			if err := q.TouchSession(ctx, db.TouchSessionParams{ID: t.SessionID, LastUsedAt: ts(now)}); err != nil {
				return err
			}
		}
		u, err := q.GetSessionUser(ctx, t.UserID)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
			return fmt.Errorf("%w: the account is gone or disabled", ErrInvalidGrant)
		}
		if err != nil {
			return err
		}
		roles := u.Roles
		for _, scope := range [][]string{t.Scope, want} {
			if scope != nil {
				roles = slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return !slices.Contains(scope, r) })
			}
		}
		for _, r := range want {
			if !slices.Contains(roles, r) {
				return ErrInvalidScope // the account no longer holds it
			}
		}
		out = Started{SessionID: t.SessionID, RefreshToken: next, User: u, Roles: roles, AMR: t.Amr, AuthTime: t.AuthTime.Time}
		if t.ClientID != nil {
			out.ClientID = *t.ClientID
		}
		return nil
	})
	if reused != nil && err == nil {
		s.Sync(ctx)
		return Started{}, reused
	}
	return out, err
}

// Sync brings this replica's revocation state up to date with the log: a
// caller that ended sessions or revoked tokens in its own transaction calls
// it once that commits. A failure is logged; the feed catches up anyway.
func (s *Service) Sync(ctx context.Context) {
	if s.cfg.Local == nil {
		return
	}
	if err := s.cfg.Local.CatchUp(ctx, db.New(s.pool)); err != nil {
		s.cfg.Logger.Warn("revocations: catching up after a change", "err", err)
	}
}

// Prune deletes what no request can use any more: authorization codes past
// their keeping (authorize.Prune), tokens of mails and second steps of
// sign-ins (mfa.Prune) expired a day ago, sessions dead for a day
// (ended, or past their absolute or idle end) with their refresh tokens,
// and revocations that every token they concern has outlived. Any replica
// may run it; running it twice does no harm.
func (s *Service) Prune(ctx context.Context) error {
	now := s.cfg.Now()
	q := db.New(s.pool)
	before := now.Add(-24 * time.Hour)
	if _, err := q.DeleteDeadSessions(ctx, db.DeleteDeadSessionsParams{Before: ts(before), IdleBefore: ts(before.Add(-s.cfg.IdleTTL))}); err != nil {
		return err
	}
	if _, err := q.DeleteOldRevocations(ctx, ts(now)); err != nil {
		return err
	}
	if err := mailtoken.Prune(ctx, q, before); err != nil {
		return err
	}
	if err := mfa.Prune(ctx, q, before); err != nil {
		return err
	}
	return authorize.Prune(ctx, q, now)
}

// successor is the refresh token that follows refresh.
func (s *Service) successor(refresh string) string {
	mac := hmac.New(sha256.New, s.cfg.Key)
	mac.Write([]byte(refresh))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// SessionOf returns the session a refresh token belongs to and its
// account, or "" when the token is unknown.
func (s *Service) SessionOf(ctx context.Context, refresh string) (id string, user int64, err error) {
	t, err := db.New(s.pool).GetRefreshToken(ctx, hash(refresh))
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, nil
	}
	return t.SessionID, t.UserID, err
}

// End ends the session id if it lives, in a transaction of its own.
func (s *Service) End(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.end(ctx, db.New(tx), id, s.cfg.Now())
	})
	if err == nil {
		s.Sync(ctx)
	}
	return err
}

// end ends the session id, if it lives, and those started under it, in
// q's transaction. It locks the session first: a code exchange starting a
// session under it (Start) holds that lock until it commits, and the
// statement that ends them, which comes after, sees its session.
func (s *Service) end(ctx context.Context, q *db.Queries, id string, now time.Time) error {
	if _, err := q.LockLiveSession(ctx, id); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	ids, err := q.EndSession(ctx, db.EndSessionParams{ID: id, EndedAt: ts(now)})
	if err != nil || len(ids) == 0 {
		return err
	}
	return s.logSessions(ctx, q, ids, now)
}

// EndClient ends every live session of tokens issued to client, in q's
// transaction: the client is being deleted.
func (s *Service) EndClient(ctx context.Context, q *db.Queries, client string) error {
	now := s.cfg.Now()
	ids, err := q.EndClientSessions(ctx, db.EndClientSessionsParams{ClientID: &client, EndedAt: ts(now)})
	if err != nil || len(ids) == 0 {
		return err
	}
	return s.logSessions(ctx, q, ids, now)
}

// EndOwn ends the live session id of user in q's transaction; ok is false
// when it is no live session of user's. Like EndAll and RevokeUser, the
// caller calls Sync once the transaction commits.
func (s *Service) EndOwn(ctx context.Context, q *db.Queries, user int64, id string) (ok bool, err error) {
	now := s.cfg.Now()
	// Locked first, as in end.
	if _, err := q.LockLiveSession(ctx, id); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	ids, err := q.EndUserSession(ctx, db.EndUserSessionParams{ID: id, UserID: user, EndedAt: ts(now)})
	if err != nil || len(ids) == 0 {
		return false, err
	}
	return true, s.logSessions(ctx, q, ids, now)
}

// EndAll ends every live session of user but keep ("" for none) in q's
// transaction.
func (s *Service) EndAll(ctx context.Context, q *db.Queries, user int64, keep string) error {
	now := s.cfg.Now()
	var k *string
	if keep != "" {
		k = &keep
	}
	ids, err := q.EndUserSessions(ctx, db.EndUserSessionsParams{UserID: user, Keep: k, EndedAt: ts(now)})
	if err != nil {
		return err
	}
	return s.logSessions(ctx, q, ids, now)
}

// RevokeUser refuses every access token of user issued so far, in q's
// transaction: for a change of roles or of the account's state, which the
// next refresh reflects. gone says the account is being deleted.
func (s *Service) RevokeUser(ctx context.Context, q *db.Queries, user int64, gone bool) error {
	now := s.cfg.Now()
	version := int64(math.MaxInt64)
	if !gone {
		var err error
		if version, err = q.BumpTokenVersion(ctx, user); err != nil {
			return err
		}
	}
	seq, err := q.LogUserRevocation(ctx, db.LogUserRevocationParams{UserID: &user, MinVersion: &version, ExpiresAt: ts(s.keepUntil(now))})
	if err != nil {
		return err
	}
	return q.NotifyRevocation(ctx, seq)
}

// RevokeClient refuses every access token of the machine client id whose
// version is below minVersion, in q's transaction: after its secret was
// replaced (the new version) or it was deleted (math.MaxInt64).
func (s *Service) RevokeClient(ctx context.Context, q *db.Queries, id string, minVersion int64) error {
	seq, err := q.LogClientRevocation(ctx, db.LogClientRevocationParams{ClientID: &id, MinVersion: &minVersion, ExpiresAt: ts(s.keepUntil(s.cfg.Now()))})
	if err != nil {
		return err
	}
	return q.NotifyRevocation(ctx, seq)
}

// RevokeRole refuses, in q's transaction, every access token of every
// account and machine client holding role, raising their token versions:
// for the role's deletion, a change of roles of all its holders, which
// their next refresh (or client credentials grant) reflects. It takes a
// fixed number of statements, whatever the number of holders; the caller
// deletes the role after it, in the same transaction.
func (s *Service) RevokeRole(ctx context.Context, q *db.Queries, role string) error {
	seq, err := q.RevokeRoleHolders(ctx, db.RevokeRoleHoldersParams{Name: role, ExpiresAt: ts(s.keepUntil(s.cfg.Now()))})
	if err != nil || seq == 0 {
		return err
	}
	return q.NotifyRevocation(ctx, seq)
}

// RevokeToken refuses the one access token jti, which expires at exp, in
// q's transaction: a token of no session (a machine client's), revoked on
// its own (RFC 7009). Its entry is kept until the token has expired.
func (s *Service) RevokeToken(ctx context.Context, q *db.Queries, jti string, exp time.Time) error {
	seq, err := q.LogTokenRevocation(ctx, db.LogTokenRevocationParams{TokenID: &jti, ExpiresAt: ts(exp.Add(2*s.cfg.Leeway + time.Second))})
	if err != nil {
		return err
	}
	return q.NotifyRevocation(ctx, seq)
}

// logSessions writes the ends of sessions ids to the revocation log and
// announces them.
func (s *Service) logSessions(ctx context.Context, q *db.Queries, ids []string, now time.Time) error {
	var last int64
	for _, id := range ids {
		seq, err := q.LogSessionRevocation(ctx, db.LogSessionRevocationParams{SessionID: &id, ExpiresAt: ts(s.keepUntil(now))})
		if err != nil {
			return err
		}
		last = seq
	}
	if last == 0 {
		return nil
	}
	return q.NotifyRevocation(ctx, last)
}

// keepUntil is when a revocation made at now is of no more use: every
// access token it concerns has expired.
func (s *Service) keepUntil(now time.Time) time.Time {
	return now.Add(s.cfg.AccessTTL + 2*s.cfg.Leeway + time.Second)
}

// IdleSince is the last use before which a session has ended idle, at now.
func (s *Service) IdleSince() time.Time { return s.cfg.Now().Add(-s.cfg.IdleTTL) }

// IdleTTL is how long a session lives unused.
func (s *Service) IdleTTL() time.Duration { return s.cfg.IdleTTL }

// Now is the Service's clock.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// amrOf is amr, or {pwd} for nil or empty.
func amrOf(amr []string) []string {
	if len(amr) == 0 {
		return []string{"pwd"}
	}
	return amr
}

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

// truncate cuts s, made valid UTF-8 without NUL characters, to at most n
// bytes, on a character boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Browser is a live browser session: a person signed in on the hosted
// sign-in page, named by the browser's sign-in cookie.
type Browser struct {
	ID     string
	UserID int64
	// AuthTime is when the person last entered their password for it,
	// and AMR how they authenticated then (RFC 8176).
	AuthTime time.Time
	AMR      []string
}

// StartBrowser starts a browser session of user in q's transaction, and
// returns it with the sign-in cookie's value (256 random bits, stored only
// as a SHA-256).
func (s *Service) StartBrowser(ctx context.Context, q *db.Queries, user int64, c Client) (b Browser, cookie string, err error) {
	now := s.cfg.Now().Truncate(time.Second)
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	cookie = base64.RawURLEncoding.EncodeToString(raw[:])
	id, err := q.CreateSession(ctx, db.CreateSessionParams{
		UserID: user, Now: ts(now), ExpiresAt: ts(now.Add(s.cfg.TTL)),
		UserAgent: truncate(c.UserAgent, 512), ClientAddr: truncate(c.Addr, 64),
		AuthTime: ts(now), CookieHash: hash(cookie), Amr: amrOf(c.AMR),
	})
	if err != nil {
		return Browser{}, "", err
	}
	return Browser{ID: id, UserID: user, AuthTime: now, AMR: amrOf(c.AMR)}, cookie, nil
}

// BrowserOf returns the live browser session cookie names; ok is false
// when it names none: unknown, ended, past its absolute or idle end
// (ROLEGATE_SESSION_TTL, ROLEGATE_REFRESH_TOKEN_TTL), or of a disabled
// account.
func (s *Service) BrowserOf(ctx context.Context, q *db.Queries, cookie string) (b Browser, ok bool, err error) {
	if cookie == "" || len(cookie) > 64 {
		return Browser{}, false, nil
	}
	row, err := q.GetBrowserSession(ctx, hash(cookie))
	if errors.Is(err, pgx.ErrNoRows) {
		return Browser{}, false, nil
	}
	if err != nil {
		return Browser{}, false, err
	}
	now := s.cfg.Now()
	if row.Disabled || !now.Before(row.ExpiresAt.Time) || !now.Before(row.LastUsedAt.Time.Add(s.cfg.IdleTTL)) {
		return Browser{}, false, nil
	}
	return Browser{ID: row.ID, UserID: row.UserID, AuthTime: row.AuthTime.Time, AMR: row.Amr}, true, nil
}

// UseBrowser records a use of browser session b in q's transaction, and,
// when reauth is not nil, that the person just authenticated again for
// it, by the methods reauth (nil for a password); it returns b as it is
// now.
func (s *Service) UseBrowser(ctx context.Context, q *db.Queries, b Browser, reauth []string) (Browser, error) {
	now := s.cfg.Now().Truncate(time.Second)
	p := db.TouchBrowserSessionParams{ID: b.ID, Now: ts(now)}
	if reauth != nil {
		p.AuthTime, b.AuthTime = ts(now), now
		p.Amr, b.AMR = amrOf(reauth), amrOf(reauth)
	}
	return b, q.TouchBrowserSession(ctx, p)
}

// EndIn ends the session id, if it lives, and those started under it, in
// q's transaction; the caller calls Sync once it commits.
func (s *Service) EndIn(ctx context.Context, q *db.Queries, id string) error {
	return s.end(ctx, q, id, s.cfg.Now())
}
