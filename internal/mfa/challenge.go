package mfa

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/db"
)

// ChallengeTTL is how long a challenge lives unless IssueChallenge is told
// otherwise.
const ChallengeTTL = 5 * time.Minute

// MaxChallengeFailures is how many wrong codes void a challenge.
const MaxChallengeFailures = 5

// ErrInvalidChallenge is the refusal of a challenge token that is unknown,
// expired, used, or void after MaxChallengeFailures wrong codes.
var ErrInvalidChallenge = errors.New("mfa: the mfa token is not valid")

// Challenge is what a sign-in that waits for its second factor carries
// from its first step (the password) to the step that finishes it.
type Challenge struct {
	// AMR is how the person authenticated so far (RFC 8176), e.g. ["pwd"].
	AMR []string
	// Scope is the roles the sign-in asked for; nil for all the account
	// holds.
	Scope []string
	// ClientID is the client the tokens are for; "" for the built-in
	// first-party client (the password grant).
	ClientID string
	// UserAgent and ClientAddr are the client's, as sessions keep them;
	// cut to 512 and 64 bytes.
	UserAgent, ClientAddr string
}

// IssuedChallenge is a live challenge, as LookupChallenge and UseChallenge
// return it.
type IssuedChallenge struct {
	Challenge
	// UserID is the account signing in.
	UserID int64
	// Failures is how many wrong codes were given for it so far.
	Failures int
	// CreatedAt is when it was issued: when the first factor was given.
	CreatedAt, ExpiresAt time.Time
}

// IssueChallenge stores c, a sign-in of user waiting for a second factor,
// valid for ttl (ChallengeTTL when 0) from now, and returns its token, the
// mfa_token: 256 random bits, of which only the SHA-256 is kept.
func IssueChallenge(ctx context.Context, q *db.Queries, user int64, c Challenge, now time.Time, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = ChallengeTTL
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	p := db.CreateMFAChallengeParams{
		Hash: sha256Sum([]byte(tok)), UserID: user, Amr: c.AMR, Scope: c.Scope,
		UserAgent: truncate(c.UserAgent, 512), ClientAddr: truncate(c.ClientAddr, 64),
		CreatedAt: ts(now), ExpiresAt: ts(now.Add(ttl)),
	}
	if c.ClientID != "" {
		p.ClientID = &c.ClientID
	}
	return tok, q.CreateMFAChallenge(ctx, p)
}

// LookupChallenge returns the live challenge of token at now, without
// using it. Every refusal is ErrInvalidChallenge.
func LookupChallenge(ctx context.Context, q *db.Queries, token string, now time.Time) (IssuedChallenge, error) {
	if len(token) != 43 {
		return IssuedChallenge{}, ErrInvalidChallenge
	}
	r, err := q.GetMFAChallenge(ctx, db.GetMFAChallengeParams{Hash: sha256Sum([]byte(token)), Now: ts(now), MaxFailures: MaxChallengeFailures})
	if errors.Is(err, pgx.ErrNoRows) {
		return IssuedChallenge{}, ErrInvalidChallenge
	}
	if err != nil {
		return IssuedChallenge{}, err
	}
	return issued(db.UseMFAChallengeRow(r)), nil
}

// FailChallenge counts a wrong code against the live challenge of token at
// now, and tells whether that made it void. ErrInvalidChallenge when it is
// not live. The count must be committed even though the sign-in fails.
func FailChallenge(ctx context.Context, q *db.Queries, token string, now time.Time) (void bool, err error) {
	if len(token) != 43 {
		return false, ErrInvalidChallenge
	}
	n, err := q.FailMFAChallenge(ctx, db.FailMFAChallengeParams{Hash: sha256Sum([]byte(token)), Now: ts(now), MaxFailures: MaxChallengeFailures})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrInvalidChallenge
	}
	if err != nil {
		return false, err
	}
	return n >= MaxChallengeFailures, nil
}

// UseChallenge marks the live challenge of token used at now and returns
// it: once, even by two requests at once. Every refusal is
// ErrInvalidChallenge.
func UseChallenge(ctx context.Context, q *db.Queries, token string, now time.Time) (IssuedChallenge, error) {
	if len(token) != 43 {
		return IssuedChallenge{}, ErrInvalidChallenge
	}
	r, err := q.UseMFAChallenge(ctx, db.UseMFAChallengeParams{Hash: sha256Sum([]byte(token)), Now: ts(now), MaxFailures: MaxChallengeFailures})
	if errors.Is(err, pgx.ErrNoRows) {
		return IssuedChallenge{}, ErrInvalidChallenge
	}
	if err != nil {
		return IssuedChallenge{}, err
	}
	return issued(r), nil
}

// Prune deletes the challenges that expired before before.
func Prune(ctx context.Context, q *db.Queries, before time.Time) error {
	_, err := q.DeleteOldMFAChallenges(ctx, ts(before))
	return err
}

func issued(r db.UseMFAChallengeRow) IssuedChallenge {
	c := IssuedChallenge{
		Challenge: Challenge{AMR: r.Amr, Scope: r.Scope, UserAgent: r.UserAgent, ClientAddr: r.ClientAddr},
		UserID:    r.UserID, Failures: int(r.Failures), CreatedAt: r.CreatedAt.Time, ExpiresAt: r.ExpiresAt.Time,
	}
	if r.ClientID != nil {
		c.ClientID = *r.ClientID
	}
	return c
}

// truncate cuts s to at most n bytes of valid UTF-8 without NULs, which
// PostgreSQL's text cannot hold, as package sessions does.
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
