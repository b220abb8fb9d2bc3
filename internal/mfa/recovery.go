package mfa

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"
	"unicode"

	"github.com/rolegate/rolegate/gen/db"
)

// RecoveryCodes is how many recovery codes an account is given at a time.
const RecoveryCodes = 10

// recoveryEncoding spells a recovery code's 80 random bits in 16
// characters of Crockford's base32 alphabet: digits and lower-case letters
// without i, l, o and u, which people mistake for others.
var recoveryEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// ReplaceRecoveryCodes makes RecoveryCodes new recovery codes for user,
// deleting the account's older ones, and returns them, to be shown once:
// only their hashes are kept. Each is 80 random bits, spelt
// xxxx-xxxx-xxxx-xxxx. Confirm calls it; the caller makes sure the account
// has a second factor for them to stand in for.
func ReplaceRecoveryCodes(ctx context.Context, q *db.Queries, user int64, now time.Time) ([]string, error) {
	if _, err := q.DeleteRecoveryCodes(ctx, user); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		var b [10]byte
		_, _ = rand.Read(b[:])
		c := recoveryEncoding.EncodeToString(b[:])
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		hashes[i] = sha256Sum([]byte(c))
	}
	if err := q.CreateRecoveryCodes(ctx, db.CreateRecoveryCodesParams{UserID: user, Hashes: hashes, Now: ts(now)}); err != nil {
		return nil, err
	}
	return codes, nil
}

// UseRecoveryCode uses up one of user's recovery codes: once, even by two
// requests at once. The code is compared regardless of case, dashes and
// spaces (and with o read as 0, i and l as 1). Every refusal is
// ErrInvalidCode.
func UseRecoveryCode(ctx context.Context, q *db.Queries, user int64, code string, now time.Time) error {
	c, ok := canonicalRecoveryCode(code)
	if !ok {
		return ErrInvalidCode
	}
	n, err := q.UseRecoveryCode(ctx, db.UseRecoveryCodeParams{UserID: user, Hash: sha256Sum([]byte(c)), Now: ts(now)})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrInvalidCode
	}
	return nil
}

// canonicalRecoveryCode returns code as ReplaceRecoveryCodes hashed it,
// or false when it cannot be a recovery code.
func canonicalRecoveryCode(code string) (string, bool) {
	if len(code) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range code {
		switch {
		case r == '-' || unicode.IsSpace(r):
			continue
		case r > unicode.MaxASCII:
			return "", false
		}
		switch r = unicode.ToLower(r); r {
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		b.WriteRune(r)
	}
	c := b.String()
	if len(c) != 16 {
		return "", false
	}
	if _, err := recoveryEncoding.DecodeString(c); err != nil {
		return "", false
	}
	return c, true
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
