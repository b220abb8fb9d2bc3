package mfa_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// t0 is the test clock's start: 10 s into a time step.
var t0 = time.Date(2026, 5, 4, 10, 0, 10, 0, time.UTC)

var masterKey = bytes.Repeat([]byte("k"), 32)

// code is the code of secret at t, as an authenticator app computes it.
func code(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	c, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// wrong is a code of 6 digits that is not c: its last digit changed.
func wrong(c string) string {
	return c[:5] + string(rune('0'+(c[5]-'0'+1)%10))
}

func sealer(tb testing.TB) *mfa.Sealer {
	tb.Helper()
	s, err := mfa.NewSealer(masterKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newUser(tb testing.TB, pool *pgxpool.Pool, email string) int64 {
	tb.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (email, canonical_email, password_hash) VALUES ($1, $1, 'x') RETURNING id`, email).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

// enrolled makes an account whose TOTP was confirmed at t0 and returns it
// with its secret and recovery codes.
func enrolled(tb testing.TB, pool *pgxpool.Pool, s *mfa.Sealer, email string) (user int64, secret string, recovery []string) {
	tb.Helper()
	ctx := context.Background()
	q := db.New(pool)
	user = newUser(tb, pool, email)
	e, err := mfa.Enrol(ctx, q, s, user, email, "rolegate", t0)
	if err != nil {
		tb.Fatal(err)
	}
	recovery, err = mfa.Confirm(ctx, q, s, user, code(tb, e.Secret, t0), t0)
	if err != nil {
		tb.Fatal(err)
	}
	return user, e.Secret, recovery
}

func TestNewSealer(t *testing.T) {
	if _, err := mfa.NewSealer(make([]byte, 31)); err == nil {
		t.Error("a master key of 31 bytes was accepted")
	}
}

func TestEnrolAndConfirm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	alice := newUser(t, pool, "alice@example.com")

	if _, err := mfa.Confirm(ctx, q, s, alice, "123456", t0); !errors.Is(err, mfa.ErrNotEnrolling) {
		t.Fatalf("Confirm before Enrol: %v, want ErrNotEnrolling", err)
	}
	first, err := mfa.Enrol(ctx, q, s, alice, "alice@example.com", "rolegate", t0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := mfa.Enrol(ctx, q, s, alice, "alice@example.com", "rolegate", t0) // replaces first
	if err != nil {
		t.Fatal(err)
	}

	// What an app takes: the secret, 20 bytes in base32, the same in the
	// URI, and the URI in a PNG QR code.
	if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret); err != nil || len(raw) != 20 {
		t.Errorf("Secret %q: %d bytes, %v; want 20 in base32", e.Secret, len(raw), err)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(
		[]any{"totp", "rolegate", "alice@example.com", e.Secret, uint64(30), otp.DigitsSix, otp.AlgorithmSHA1},
		[]any{key.Type(), key.Issuer(), key.AccountName(), key.Secret(), key.Period(), key.Digits(), key.Algorithm()},
	); diff != "" {
		t.Errorf("URI %s (-want +got):\n%s", e.URI, diff)
	}
	data, ok := strings.CutPrefix(e.QR, "data:image/png;base64,")
	if !ok {
		t.Fatalf("QR = %.40q…, want a PNG data URL", e.QR)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("QR: %v, %v; want a PNG image", img, err)
	}

	if has, err := mfa.HasFactor(ctx, q, alice); err != nil || has {
		t.Errorf("HasFactor while pending = %v, %v; want false", has, err)
	}
	now := t0.Add(time.Minute)
	for _, c := range []string{code(t, first.Secret, now), wrong(code(t, e.Secret, now)), "12345", ""} {
		if _, err := mfa.Confirm(ctx, q, s, alice, c, now); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Errorf("Confirm(%q): %v, want ErrInvalidCode", c, err)
		}
	}
	confirming := code(t, e.Secret, now)
	recovery, err := mfa.Confirm(ctx, q, s, alice, confirming, now)
	if err != nil {
		t.Fatal(err)
	}
	format := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)
	seen := map[string]bool{}
	for _, c := range recovery {
		if !format.MatchString(c) || seen[c] {
			t.Errorf("recovery code %q: not of the form xxxx-xxxx-xxxx-xxxx, or seen twice", c)
		}
		seen[c] = true
	}
	if len(recovery) != mfa.RecoveryCodes || mfa.RecoveryCodes != 10 {
		t.Errorf("%d recovery codes, want 10", len(recovery))
	}
	if has, err := mfa.HasFactor(ctx, q, alice); err != nil || !has {
		t.Errorf("HasFactor once confirmed = %v, %v; want true", has, err)
	}
	// The confirming code is used.
	if err := mfa.Verify(ctx, q, s, alice, confirming, now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("Verify with the confirming code: %v, want ErrInvalidCode", err)
	}
	if _, err := mfa.Confirm(ctx, q, s, alice, code(t, e.Secret, now.Add(30*time.Second)), now.Add(30*time.Second)); !errors.Is(err, mfa.ErrNotEnrolling) {
		t.Errorf("Confirm once active: %v, want ErrNotEnrolling", err)
	}
	if _, err := mfa.Enrol(ctx, q, s, alice, "alice@example.com", "rolegate", now); !errors.Is(err, mfa.ErrEnrolled) {
		t.Errorf("Enrol once active: %v, want ErrEnrolled", err)
	}
	if err := mfa.Verify(ctx, q, s, alice, code(t, e.Secret, now.Add(time.Minute)), now.Add(time.Minute)); err != nil {
		t.Errorf("the active secret is still the confirmed one: %v", err)
	}
	for _, names := range [][2]string{{"alice@example.com", ""}, {"", "rolegate"}, {"alice@example.com", "https://auth.example.com"}} {
		if _, err := mfa.Enrol(ctx, q, s, alice, names[0], names[1], now); err == nil {
			t.Errorf("Enrol with account name %q and issuer %q was accepted", names[0], names[1])
		}
	}
}

// A code of the step now is in, or of one either side, passes; none
// further away, nor anything but 6 ASCII digits.
func TestVerifyWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	now := t0.Add(10 * time.Minute)
	tests := []struct {
		name string
		code func(secret string) string
		ok   bool
	}{
		{"now", func(sec string) string { return code(t, sec, now) }, true},
		{"a step ago", func(sec string) string { return code(t, sec, now.Add(-30*time.Second)) }, true},
		{"a step ahead", func(sec string) string { return code(t, sec, now.Add(30*time.Second)) }, true},
		{"two steps ago", func(sec string) string { return code(t, sec, now.Add(-60*time.Second)) }, false},
		{"two steps ahead", func(sec string) string { return code(t, sec, now.Add(60*time.Second)) }, false},
		{"wrong", func(sec string) string { return wrong(code(t, sec, now)) }, false},
		{"five digits", func(sec string) string { return code(t, sec, now)[:5] }, false},
		{"seven digits", func(sec string) string { return code(t, sec, now) + "0" }, false},
		{"spaced", func(sec string) string { return " " + code(t, sec, now) }, false},
		{"full-width digits", func(string) string { return "１２３４５６" }, false},
		{"letters", func(string) string { return "12345a" }, false},
		{"empty", func(string) string { return "" }, false},
	}
	for i, tt := range tests {
		user, secret, _ := enrolled(t, pool, s, fmt.Sprintf("u%d@example.com", i))
		err := mfa.Verify(ctx, q, s, user, tt.code(secret), now)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want it accepted", tt.name, err)
		case !tt.ok && !errors.Is(err, mfa.ErrInvalidCode):
			t.Errorf("%s: %v, want ErrInvalidCode", tt.name, err)
		}
	}
	if err := mfa.Verify(ctx, q, s, newUser(t, pool, "none@example.com"), "123456", now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("an account without TOTP: %v, want ErrInvalidCode", err)
	}
}

// A code is accepted once, and once a step's code is, no earlier step's.
func TestVerifyReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	user, secret, _ := enrolled(t, pool, s, "alice@example.com")
	now := t0.Add(time.Hour)
	tests := []struct {
		name string
		code string
		at   time.Time
		ok   bool
	}{
		{"the step ahead", code(t, secret, now.Add(30*time.Second)), now, true},
		{"the same code again", code(t, secret, now.Add(30*time.Second)), now, false},
		{"the same code in its own step", code(t, secret, now.Add(30*time.Second)), now.Add(30 * time.Second), false},
		{"an earlier step's, unused", code(t, secret, now), now, false},
		{"the step after", code(t, secret, now.Add(60*time.Second)), now.Add(60 * time.Second), true},
	}
	for _, tt := range tests {
		err := mfa.Verify(ctx, q, s, user, tt.code, tt.at)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want it accepted", tt.name, err)
		case !tt.ok && !errors.Is(err, mfa.ErrInvalidCode):
			t.Errorf("%s: %v, want ErrInvalidCode", tt.name, err)
		}
	}
}

// Requests that give one code at once, each in its own transaction: one
// passes.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := sealer(t)
	user, secret, recovery := enrolled(t, pool, s, "alice@example.com")
	now := t0.Add(time.Hour)
	tests := []struct {
		name string
		use  func(q *db.Queries) error
	}{
		{"a TOTP code", func(q *db.Queries) error { return mfa.Verify(ctx, q, s, user, code(t, secret, now), now) }},
		{"a recovery code", func(q *db.Queries) error { return mfa.UseRecoveryCode(ctx, q, user, recovery[0], now) }},
	}
	// As many as the pool has connections, so that all are in their
	// transactions before any gives the code.
	n := int(min(pool.Config().MaxConns, 8))
	for _, tt := range tests {
		errs := make([]error, n)
		var ready, wg sync.WaitGroup
		ready.Add(n)
		for i := range n {
			wg.Go(func() {
				errs[i] = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, "SELECT 1")
					ready.Done()
					ready.Wait()
					if err != nil {
						return err
					}
					if err := tt.use(db.New(tx)); err != nil {
						return err
					}
					time.Sleep(50 * time.Millisecond) // hold the row while the others come
					return nil
				})
			})
		}
		wg.Wait()
		passed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				passed++
			case !errors.Is(err, mfa.ErrInvalidCode):
				t.Errorf("%s: %v, want nil or ErrInvalidCode", tt.name, err)
			}
		}
		if passed != 1 {
			t.Errorf("%s: %d of %d uses at once passed, want 1", tt.name, passed, n)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	alice, _, codes := enrolled(t, pool, s, "alice@example.com")
	bob, _, bobs := enrolled(t, pool, s, "bob@example.com")
	now := t0.Add(time.Hour)
	tests := []struct {
		name string
		user int64
		code string
		ok   bool
	}{
		{"as shown", alice, codes[0], true},
		{"again", alice, codes[0], false},
		{"in capitals, with spaces", alice, strings.ToUpper(strings.ReplaceAll(codes[1], "-", " ")), true},
		{"without dashes", alice, strings.ReplaceAll(codes[2], "-", ""), true},
		{"another account's", alice, bobs[0], false},
		{"of the other account, unaffected", bob, bobs[0], true},
		{"one character short", alice, codes[3][:18], false},
		{"a character outside the alphabet", alice, "u" + codes[3][1:], false},
		{"a TOTP code", alice, "123456", false},
		{"empty", alice, "", false},
	}
	for _, tt := range tests {
		err := mfa.UseRecoveryCode(ctx, q, tt.user, tt.code, now)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want it accepted", tt.name, err)
		case !tt.ok && !errors.Is(err, mfa.ErrInvalidCode):
			t.Errorf("%s: %v, want ErrInvalidCode", tt.name, err)
		}
	}
	if f, err := mfa.GetFactors(ctx, q, alice); err != nil || f.RecoveryCodesLeft != 7 {
		t.Errorf("GetFactors = %+v, %v; want 7 recovery codes left", f, err)
	}

	// A new set replaces the old one.
	fresh, err := mfa.ReplaceRecoveryCodes(ctx, q, alice, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := mfa.UseRecoveryCode(ctx, q, alice, codes[4], now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("a code of the replaced set: %v, want ErrInvalidCode", err)
	}
	if err := mfa.UseRecoveryCode(ctx, q, alice, fresh[4], now); err != nil {
		t.Errorf("a code of the new set: %v", err)
	}

	// So does Confirm's.
	carol := newUser(t, pool, "carol@example.com")
	old, err := mfa.ReplaceRecoveryCodes(ctx, q, carol, now)
	if err != nil {
		t.Fatal(err)
	}
	e, err := mfa.Enrol(ctx, q, s, carol, "carol@example.com", "rolegate", now)
	if err != nil {
		t.Fatal(err)
	}
	confirmed, err := mfa.Confirm(ctx, q, s, carol, code(t, e.Secret, now), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := mfa.UseRecoveryCode(ctx, q, carol, old[0], now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("a code of the set before Confirm: %v, want ErrInvalidCode", err)
	}
	if f, err := mfa.GetFactors(ctx, q, carol); err != nil || f.RecoveryCodesLeft != 10 {
		t.Errorf("after Confirm: %+v, %v; want 10 recovery codes left", f, err)
	}
	if err := mfa.UseRecoveryCode(ctx, q, carol, confirmed[9], now); err != nil {
		t.Errorf("a code of Confirm's set: %v", err)
	}

	// Only hashes are kept.
	var hashed bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mfa_recovery_codes WHERE user_id = $1 AND hash = sha256(convert_to($2, 'UTF8')))`,
		carol, strings.ReplaceAll(confirmed[0], "-", "")).Scan(&hashed); err != nil || !hashed {
		t.Errorf("a recovery code is kept by the SHA-256 of its canonical form: %v, %v", hashed, err)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	alice, secret, codes := enrolled(t, pool, s, "alice@example.com")
	bob, _, _ := enrolled(t, pool, s, "bob@example.com")
	now := t0.Add(time.Hour)
	tok, err := mfa.IssueChallenge(ctx, q, alice, mfa.Challenge{AMR: []string{"pwd"}}, now, 0)
	if err != nil {
		t.Fatal(err)
	}

	if removed, err := mfa.Remove(ctx, q, alice); err != nil || !removed {
		t.Fatalf("Remove = %v, %v; want true", removed, err)
	}
	if f, err := mfa.GetFactors(ctx, q, alice); err != nil || f != (mfa.Factors{}) {
		t.Errorf("GetFactors after Remove = %+v, %v; want none", f, err)
	}
	if has, err := mfa.HasFactor(ctx, q, alice); err != nil || has {
		t.Errorf("HasFactor after Remove = %v, %v; want false", has, err)
	}
	if err := mfa.Verify(ctx, q, s, alice, code(t, secret, now), now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("Verify after Remove: %v, want ErrInvalidCode", err)
	}
	if err := mfa.UseRecoveryCode(ctx, q, alice, codes[0], now); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("a recovery code after Remove: %v, want ErrInvalidCode", err)
	}
	if _, err := mfa.LookupChallenge(ctx, q, tok, now); !errors.Is(err, mfa.ErrInvalidChallenge) {
		t.Errorf("a challenge of before Remove: %v, want ErrInvalidChallenge", err)
	}
	if removed, err := mfa.Remove(ctx, q, alice); err != nil || removed {
		t.Errorf("Remove again = %v, %v; want false", removed, err)
	}
	if has, err := mfa.HasFactor(ctx, q, bob); err != nil || !has {
		t.Errorf("another account's factor after Remove = %v, %v; want it kept", has, err)
	}
	// A pending enrolment is removed too, and the account can enrol again.
	if _, err := mfa.Enrol(ctx, q, s, alice, "alice@example.com", "rolegate", now); err != nil {
		t.Fatal(err)
	}
	if removed, err := mfa.Remove(ctx, q, alice); err != nil || !removed {
		t.Errorf("Remove of a pending enrolment = %v, %v; want true", removed, err)
	}
	if _, err := mfa.Confirm(ctx, q, s, alice, "123456", now); !errors.Is(err, mfa.ErrNotEnrolling) {
		t.Errorf("Confirm after Remove: %v, want ErrNotEnrolling", err)
	}
}

// GetFactors tells what there is, and nothing secret.
func TestGetFactors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	alice, secret, codes := enrolled(t, pool, s, "alice@example.com")
	pending := newUser(t, pool, "pending@example.com")
	if _, err := mfa.Enrol(ctx, q, s, pending, "pending@example.com", "rolegate", t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		user int64
		want mfa.Factors
	}{
		{"active", alice, mfa.Factors{TOTP: true, TOTPSince: t0, RecoveryCodesLeft: 10}},
		{"pending", pending, mfa.Factors{}},
		{"none", newUser(t, pool, "none@example.com"), mfa.Factors{}},
	}
	for _, tt := range tests {
		got, err := mfa.GetFactors(ctx, q, tt.user)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		shown := fmt.Sprintf("%+v %#v", got, got)
		for _, secretText := range append([]string{secret, strings.ToLower(secret)}, codes...) {
			if strings.Contains(shown, secretText) {
				t.Errorf("%s: GetFactors shows a secret: %s", tt.name, shown)
			}
		}
	}
}

// The secret is stored sealed, for its account, under the master key.
func TestSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := sealer(t)
	alice, secret, _ := enrolled(t, pool, s, "alice@example.com")
	bob, _, _ := enrolled(t, pool, s, "bob@example.com")
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if err := pool.QueryRow(ctx, `SELECT secret FROM mfa_totp WHERE user_id = $1`, alice).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, raw) || bytes.Contains(sealed, []byte(secret)) || len(sealed) != 12+20+16 {
		t.Errorf("the stored secret (%d bytes) is not sealed: %x", len(sealed), sealed)
	}

	other, err := mfa.NewSealer(bytes.Repeat([]byte("o"), 32))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	if err := mfa.Verify(ctx, q, other, alice, code(t, secret, now), now); err == nil || errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("Verify under another master key: %v, want an error that is not ErrInvalidCode", err)
	}
	if err := mfa.Verify(ctx, q, sealer(t), alice, code(t, secret, now), now); err != nil {
		t.Errorf("Verify under the same master key, another Sealer: %v", err)
	}
	// Sealed for alice, it does not open as bob's.
	if _, err := pool.Exec(ctx, `UPDATE mfa_totp SET secret = $1 WHERE user_id = $2`, sealed, bob); err != nil {
		t.Fatal(err)
	}
	if err := mfa.Verify(ctx, q, s, bob, code(t, secret, now.Add(30*time.Second)), now.Add(30*time.Second)); err == nil || errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("alice's sealed secret as bob's: %v, want an error that is not ErrInvalidCode", err)
	}
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	alice := newUser(t, pool, "alice@example.com")
	now := t0
	issue := func(c mfa.Challenge, ttl time.Duration) string {
		t.Helper()
		tok, err := mfa.IssueChallenge(ctx, q, alice, c, now, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	full := mfa.Challenge{AMR: []string{"pwd"}, Scope: []string{"user"}, ClientID: "cl_app", UserAgent: "test/1.0", ClientAddr: "192.0.2.1"}
	tok := issue(full, time.Minute)
	if len(tok) != 43 {
		t.Errorf("token %q: want 43 characters of base64url", tok)
	}
	got, err := mfa.LookupChallenge(ctx, q, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	want := mfa.IssuedChallenge{Challenge: full, UserID: alice, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LookupChallenge (-want +got):\n%s", diff)
	}
	// Scope nil (all roles) and the first-party client come back as they went.
	bare := issue(mfa.Challenge{AMR: []string{"pwd"}}, 0)
	if got, err := mfa.LookupChallenge(ctx, q, bare, now); err != nil || got.Scope != nil || got.ClientID != "" || !got.ExpiresAt.Equal(now.Add(mfa.ChallengeTTL)) {
		t.Errorf("a bare challenge: %+v, %v; want nil scope, no client, the default lifetime", got, err)
	}

	tests := []struct {
		name string
		tok  string
		at   time.Time
		ok   bool
	}{
		{"expired", tok, now.Add(time.Minute), false},
		{"unknown", strings.Repeat("A", 43), now, false},
		{"malformed", "short", now, false},
		{"alive, just", tok, now.Add(time.Minute - time.Microsecond), true},
		{"used", tok, now, false},
	}
	for _, tt := range tests {
		got, err := mfa.UseChallenge(ctx, q, tt.tok, tt.at)
		switch {
		case tt.ok && (err != nil || got.UserID != alice):
			t.Errorf("%s: %+v, %v; want alice's challenge", tt.name, got, err)
		case !tt.ok && !errors.Is(err, mfa.ErrInvalidChallenge):
			t.Errorf("%s: %+v, %v; want ErrInvalidChallenge", tt.name, got, err)
		}
	}
	if _, err := mfa.LookupChallenge(ctx, q, tok, now); !errors.Is(err, mfa.ErrInvalidChallenge) {
		t.Errorf("LookupChallenge of a used challenge: %v, want ErrInvalidChallenge", err)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mfa_challenges WHERE hash = sha256(convert_to($1, 'UTF8'))`, tok).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("the token is kept by its SHA-256: %d rows, %v", stored, err)
	}

	// Wrong codes count; the fifth voids it.
	failing := issue(full, 0)
	for i := 1; i <= mfa.MaxChallengeFailures; i++ {
		void, err := mfa.FailChallenge(ctx, q, failing, now)
		if err != nil || void != (i == mfa.MaxChallengeFailures) {
			t.Fatalf("failure %d: void %v, %v", i, void, err)
		}
		if i < mfa.MaxChallengeFailures {
			if got, err := mfa.LookupChallenge(ctx, q, failing, now); err != nil || got.Failures != i {
				t.Errorf("after %d failures: %+v, %v; want it live, counting %d", i, got, err, i)
			}
		}
	}
	if _, err := mfa.LookupChallenge(ctx, q, failing, now); !errors.Is(err, mfa.ErrInvalidChallenge) {
		t.Errorf("LookupChallenge after 5 failures: %v, want ErrInvalidChallenge", err)
	}
	if _, err := mfa.UseChallenge(ctx, q, failing, now); !errors.Is(err, mfa.ErrInvalidChallenge) {
		t.Errorf("UseChallenge after 5 failures: %v, want ErrInvalidChallenge", err)
	}
	if _, err := mfa.FailChallenge(ctx, q, failing, now); !errors.Is(err, mfa.ErrInvalidChallenge) {
		t.Errorf("FailChallenge after 5 failures: %v, want ErrInvalidChallenge", err)
	}

	// Two uses at once: one passes.
	twice := issue(full, 0)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := mfa.UseChallenge(ctx, db.New(tx), twice, now)
				return err
			})
		})
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("two uses at once: %v and %v; want one to pass and one ErrInvalidChallenge", errs[0], errs[1])
	}

	// Prune deletes what expired before, and only that.
	if err := mfa.Prune(ctx, q, now.Add(time.Minute+time.Second)); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mfa_challenges`).Scan(&left); err != nil || left != 3 {
		t.Errorf("after Prune: %d challenges, %v; want the 3 of 5 minutes", left, err)
	}
}
