package authorize

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
)

// CodeTTL is how long a code may wait for its exchange.
const CodeTTL = 60 * time.Second

// CodeKeep is how long a code is kept past its expiry, so that one
// presented again still ends the session its exchange started.
const CodeKeep = 24 * time.Hour

// Grant is what a code stands for.
type Grant struct {
	ClientID string
	UserID   int64
	// BrowserSession is the browser session the person signed in with.
	BrowserSession string
	RedirectURI    string
	Challenge      string
	Scope          Scope
	Nonce          string
	AuthTime       time.Time
	// AMR is how the person authenticated (RFC 8176); nil for a password.
	AMR []string
}

// ErrInvalidGrant is wrapped by every refusal of Redeem; the wrapping text
// is for logs only.
var ErrInvalidGrant = errors.New("authorize: the code is not valid")

// ReusedError is Redeem's refusal of a code used before: the session its
// first exchange started must end (RFC 6749 §4.1.2).
type ReusedError struct {
	SessionID string
	UserID    int64
}

func (e *ReusedError) Error() string { return ErrInvalidGrant.Error() + ": used before" }

// Unwrap returns ErrInvalidGrant.
func (e *ReusedError) Unwrap() error { return ErrInvalidGrant }

// Issue stores a code for g in q's transaction and returns it: 256 random
// bits, stored only as their SHA-256, valid for CodeTTL from now.
func Issue(ctx context.Context, q *db.Queries, g Grant, now time.Time) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	code := base64.RawURLEncoding.EncodeToString(b[:])
	p := db.CreateAuthorizationCodeParams{
		Hash: codeHash(code), ClientID: g.ClientID, UserID: g.UserID, BrowserSessionID: g.BrowserSession,
		RedirectUri: g.RedirectURI, CodeChallenge: g.Challenge, Scope: g.Scope.List(),
		AuthTime: ts(g.AuthTime), CreatedAt: ts(now), ExpiresAt: ts(now.Add(CodeTTL)), Amr: g.AMR,
	}
	if g.Nonce != "" {
		p.Nonce = &g.Nonce
	}
	return code, q.CreateAuthorizationCode(ctx, p)
}

// Redeem exchanges code in q's transaction, for client, which presented
// redirectURI ("" when it sent none) and verifier: it checks them against
// the code, calls start to start the session of tokens, and marks the code
// used by that session. Every refusal wraps ErrInvalidGrant; a code used
// before is a *ReusedError, whose session the caller ends. The checks and
// the use happen under the code's row lock, so two exchanges of one code
// cannot both succeed.
func Redeem(ctx context.Context, q *db.Queries, code, client, redirectURI, verifier string, now time.Time,
	start func(Grant) (session string, err error)) (Grant, error) {
	if len(code) != 43 {
		return Grant{}, fmt.Errorf("%w: malformed", ErrInvalidGrant)
	}
	row, err := q.GetAuthorizationCode(ctx, codeHash(code))
	if errors.Is(err, pgx.ErrNoRows) {
		return Grant{}, fmt.Errorf("%w: unknown", ErrInvalidGrant)
	}
	if err != nil {
		return Grant{}, err
	}
	if row.UsedAt.Valid {
		e := &ReusedError{UserID: row.UserID}
		if row.SessionID != nil {
			e.SessionID = *row.SessionID
		}
		return Grant{}, e
	}
	switch {
	case !now.Before(row.ExpiresAt.Time):
		return Grant{}, fmt.Errorf("%w: expired", ErrInvalidGrant)
	case row.ClientID != client:
		return Grant{}, fmt.Errorf("%w: issued to another client", ErrInvalidGrant)
	case redirectURI != "" && redirectURI != row.RedirectUri:
		return Grant{}, fmt.Errorf("%w: redirect_uri differs from the authorization request's", ErrInvalidGrant)
	case !VerifyPKCE(verifier, row.CodeChallenge):
		return Grant{}, fmt.Errorf("%w: code_verifier does not match the code_challenge", ErrInvalidGrant)
	}
	g := Grant{
		ClientID: row.ClientID, UserID: row.UserID, BrowserSession: row.BrowserSessionID,
		RedirectURI: row.RedirectUri, Challenge: row.CodeChallenge, AuthTime: row.AuthTime.Time, AMR: row.Amr,
	}
	for _, s := range row.Scope {
		if slices.Contains(Scopes, s) {
			g.Scope.OIDC = append(g.Scope.OIDC, s)
		} else {
			g.Scope.Roles = append(g.Scope.Roles, s)
		}
	}
	if row.Nonce != nil {
		g.Nonce = *row.Nonce
	}
	sid, err := start(g)
	if err != nil {
		return Grant{}, err
	}
	return g, q.UseAuthorizationCode(ctx, db.UseAuthorizationCodeParams{Hash: row.Hash, UsedAt: ts(now), SessionID: &sid})
}

// Prune deletes codes that expired more than CodeKeep before now.
func Prune(ctx context.Context, q *db.Queries, now time.Time) error {
	_, err := q.DeleteOldAuthorizationCodes(ctx, ts(now.Add(-CodeKeep)))
	return err
}

func codeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
