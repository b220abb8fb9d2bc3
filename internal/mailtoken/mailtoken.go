// Package mailtoken makes and redeems the tokens in the links of mails
// (email verification, password reset, email change): 256 random bits,
// stored only as their SHA-256, bound to one purpose and one account,
// used once, and void once a newer token of the same purpose and account
// is made. Every refusal is the one ErrInvalid, so that an answer tells
// nothing of why.
package mailtoken

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
)

// Purpose is what a token is for.
type Purpose string

// The purposes.
const (
	VerifyEmail   Purpose = "verify_email"
	ResetPassword Purpose = "reset_password"
	ChangeEmail   Purpose = "change_email"
)

// ErrInvalid is the refusal of a token that is unknown, of another
// purpose, used, expired or voided.
var ErrInvalid = errors.New("mailtoken: the link is not valid")

// Grant is what a redeemed token proves.
type Grant struct {
	UserID int64
	// Email is the address the mail went to.
	Email string
}

// Issue makes a token of purpose for user, whose mail goes to email, valid
// for ttl from now, in q's transaction, voiding the account's older
// tokens of that purpose; it returns the token for the link.
func Issue(ctx context.Context, q *db.Queries, p Purpose, user int64, email string, now time.Time, ttl time.Duration) (string, error) {
	if err := q.VoidMailTokens(ctx, db.VoidMailTokensParams{UserID: user, Purpose: string(p)}); err != nil {
		return "", err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, q.CreateMailToken(ctx, db.CreateMailTokenParams{
		Hash: hash(tok), UserID: user, Purpose: string(p), Email: email, CreatedAt: ts(now), ExpiresAt: ts(now.Add(ttl)),
	})
}

// Redeem uses token for purpose p in q's transaction: once, while it
// lives. Every refusal is ErrInvalid.
func Redeem(ctx context.Context, q *db.Queries, p Purpose, token string, now time.Time) (Grant, error) {
	if len(token) != 43 {
		return Grant{}, ErrInvalid
	}
	row, err := q.UseMailToken(ctx, db.UseMailTokenParams{Hash: hash(token), Purpose: string(p), Now: ts(now)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Grant{}, ErrInvalid
	}
	if err != nil {
		return Grant{}, err
	}
	return Grant{UserID: row.UserID, Email: row.Email}, nil
}

// Prune deletes tokens that expired before before.
func Prune(ctx context.Context, q *db.Queries, before time.Time) error {
	_, err := q.DeleteOldMailTokens(ctx, ts(before))
	return err
}

func hash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
