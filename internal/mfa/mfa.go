// Package mfa keeps the second factors of accounts in PostgreSQL: TOTP
// authenticators (RFC 6238: SHA-1, 6 digits, 30 s steps, a step of skew
// either way), whose secrets are stored only sealed under the master key;
// one-use recovery codes, stored only as hashes; and the challenges that
// carry a sign-in from its password to its second factor.
//
// Every function runs in the caller's *db.Queries, so in its transaction.
// A code is accepted at most once, even by two requests at once: a TOTP
// code only for a time step later than the last one accepted, a recovery
// code and a challenge by an UPDATE that only one of them can make.
// Every refusal of a code is the one ErrInvalidCode, and of a challenge
// the one ErrInvalidChallenge, so that an answer tells nothing of why.
package mfa

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/keys"
)

// The TOTP parameters: those every authenticator app understands.
const (
	period     = 30 // seconds a code lasts
	secretSize = 20 // bytes, the size of SHA-1's output (RFC 4226 section 4)
	qrSize     = 256
)

var totpOpts = totp.ValidateOpts{Period: period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// ErrInvalidCode is the refusal of a code that is wrong, malformed, used
// already (a TOTP code of a step no later than the last accepted, a used
// recovery code), or given by an account that has no such factor.
var ErrInvalidCode = errors.New("mfa: the code is not valid")

// ErrEnrolled is Enrol's refusal when the account's TOTP is active already:
// it must be removed first.
var ErrEnrolled = errors.New("mfa: the account has an active authenticator already")

// ErrNotEnrolling is Confirm's refusal when the account has no pending
// enrolment.
var ErrNotEnrolling = errors.New("mfa: no enrolment is pending")

// Sealer seals TOTP secrets with AES-256-GCM under a key derived from the
// master key, bound to their account: a sealed secret copied to another
// account's row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer under masterKey, which must be at least
// keys.MinMasterKeyLen bytes; every replica must have the same.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) < keys.MinMasterKeyLen {
		return nil, fmt.Errorf("mfa: the master key must be at least %d bytes", keys.MinMasterKeyLen)
	}
	// A key of its own, as package keys derives one for signing keys.
	k := sha256Sum(append([]byte("rolegate mfa secrets\x00"), masterKey...))
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// seal returns secret sealed for user's TOTP, its nonce first.
func (s *Sealer) seal(user int64, secret []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, secret, totpAD(user))
}

// open returns the secret sealed for user's TOTP.
func (s *Sealer) open(user int64, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("mfa: the TOTP secret of user %d is damaged", user)
	}
	secret, err := s.aead.Open(nil, sealed[:n], sealed[n:], totpAD(user))
	if err != nil {
		return nil, fmt.Errorf("mfa: the TOTP secret of user %d does not open with this master key (do all replicas have the same ROLEGATE_MASTER_KEY?)", user)
	}
	return secret, nil
}

// totpAD is the additional data of user's sealed TOTP secret: what it is,
// and whose.
func totpAD(user int64) []byte { return []byte("totp:" + strconv.FormatInt(user, 10)) }

// Enrolment is what an authenticator app needs to take a new TOTP secret.
type Enrolment struct {
	// Secret is the secret in base32 (RFC 4648, no padding), for typing in.
	Secret string
	// URI is the otpauth:// URI of the secret (Google Authenticator's Key
	// URI Format).
	URI string
	// QR is the URI as a QR code: a data:image/png;base64 URL.
	QR string
}

// Enrol starts user's TOTP enrolment: it makes a secret and stores it,
// sealed, as the account's pending TOTP, replacing a pending one. The app
// shows the account as accountName (the email) under issuer; neither may
// hold a colon. ErrEnrolled when the account's TOTP is active.
func Enrol(ctx context.Context, q *db.Queries, s *Sealer, user int64, accountName, issuer string, now time.Time) (Enrolment, error) {
	if accountName == "" || issuer == "" || strings.Contains(accountName, ":") || strings.Contains(issuer, ":") {
		return Enrolment{}, fmt.Errorf("mfa: the account name %q and issuer %q must be non-empty and free of colons", accountName, issuer)
	}
	secret := make([]byte, secretSize)
	_, _ = rand.Read(secret)
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: accountName, Period: period, Secret: secret,
		Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm,
	})
	if err != nil {
		return Enrolment{}, err
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return Enrolment{}, err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return Enrolment{}, err
	}
	_, err = q.StartTOTPEnrolment(ctx, db.StartTOTPEnrolmentParams{UserID: user, Secret: s.seal(user, secret), Now: ts(now)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Enrolment{}, ErrEnrolled
	}
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{
		Secret: key.Secret(),
		URI:    key.URL(),
		QR:     "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()),
	}, nil
}

// Confirm activates user's pending TOTP when code is one of its codes at
// now, and returns the account's new recovery codes (see
// ReplaceRecoveryCodes), to be shown once. ErrNotEnrolling when no
// enrolment is pending, ErrInvalidCode when code is not valid.
func Confirm(ctx context.Context, q *db.Queries, s *Sealer, user int64, code string, now time.Time) ([]string, error) {
	sealed, err := q.GetPendingTOTP(ctx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotEnrolling
	}
	if err != nil {
		return nil, err
	}
	secret, err := s.open(user, sealed)
	if err != nil {
		return nil, err
	}
	step, ok := match(secret, code, now, -1)
	if !ok {
		return nil, ErrInvalidCode
	}
	// The confirming code counts as used, and the secret must still be the
	// one it was checked against: a concurrent Enrol may have replaced it.
	n, err := q.ConfirmTOTP(ctx, db.ConfirmTOTPParams{UserID: user, Secret: sealed, Step: step, Now: ts(now)})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNotEnrolling
	}
	return ReplaceRecoveryCodes(ctx, q, user, now)
}

// Verify accepts code for user's active TOTP at now: a code of the
// current time step or of the one either side, later than the last step
// accepted, which becomes the last. Of two Verify calls with one code, in
// transactions at once, the second waits for the first to end and passes
// only if the first rolled back. Every refusal is ErrInvalidCode: a wrong
// code, one used already, one not of exactly 6 ASCII digits, or an account
// with no active TOTP.
func Verify(ctx context.Context, q *db.Queries, s *Sealer, user int64, code string, now time.Time) error {
	row, err := q.GetActiveTOTP(ctx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrInvalidCode
	}
	if err != nil {
		return err
	}
	secret, err := s.open(user, row.Secret)
	if err != nil {
		return err
	}
	step, ok := match(secret, code, now, row.LastStep)
	if !ok {
		return ErrInvalidCode
	}
	n, err := q.AcceptTOTPStep(ctx, db.AcceptTOTPStepParams{UserID: user, Step: step})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrInvalidCode
	}
	return nil
}

// match returns the time step, later than after, of the window around now
// (one step either way) whose code code is.
func match(secret []byte, code string, now time.Time, after int64) (int64, bool) {
	if !isCode(code) {
		return 0, false
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	current := now.Unix() / period
	for step := current - 1; step <= current+1; step++ {
		if step <= after {
			continue
		}
		// Skew 0 at the step's start: the library checks exactly that step.
		if ok, err := totp.ValidateCustom(code, enc, time.Unix(step*period, 0), totpOpts); err == nil && ok {
			return step, true
		}
	}
	return 0, false
}

// isCode tells whether code is exactly 6 ASCII digits.
func isCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Remove deletes user's TOTP, pending or active, the account's recovery
// codes and its challenges (a sign-in waiting for a second factor starts
// again), and tells whether there was a TOTP to remove.
func Remove(ctx context.Context, q *db.Queries, user int64) (removed bool, err error) {
	n, err := q.DeleteTOTP(ctx, user)
	if err != nil {
		return false, err
	}
	if _, err := q.DeleteRecoveryCodes(ctx, user); err != nil {
		return false, err
	}
	if err := q.DeleteUserMFAChallenges(ctx, user); err != nil {
		return false, err
	}
	return n > 0, nil
}

// Factors is what an account has of second factors, without a secret.
type Factors struct {
	// TOTP tells whether the account has an active TOTP; a pending
	// enrolment is none.
	TOTP bool
	// TOTPSince is when the TOTP was confirmed; zero without one.
	TOTPSince time.Time
	// RecoveryCodesLeft is how many recovery codes are unused.
	RecoveryCodesLeft int
}

// GetFactors returns user's second factors.
func GetFactors(ctx context.Context, q *db.Queries, user int64) (Factors, error) {
	var f Factors
	since, err := q.GetTOTPConfirmedAt(ctx, user)
	switch {
	case err == nil:
		f.TOTP, f.TOTPSince = true, since.Time
	case !errors.Is(err, pgx.ErrNoRows):
		return Factors{}, err
	}
	left, err := q.CountRecoveryCodesLeft(ctx, user)
	if err != nil {
		return Factors{}, err
	}
	f.RecoveryCodesLeft = int(left)
	return f, nil
}

// HasFactor tells whether user has an active second factor, which a
// sign-in must then give: one indexed lookup, for the sign-in path.
func HasFactor(ctx context.Context, q *db.Queries, user int64) (bool, error) {
	return q.HasSecondFactor(ctx, user)
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }
