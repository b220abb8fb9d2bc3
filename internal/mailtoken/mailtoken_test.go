package mailtoken_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/mailtoken"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestRedeem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	var alice, bob int64
	for _, u := range []struct {
		email string
		id    *int64
	}{{"alice@example.com", &alice}, {"bob@example.com", &bob}} {
		if err := pool.QueryRow(ctx, `INSERT INTO users (email, canonical_email, password_hash) VALUES ($1, $1, 'x') RETURNING id`, u.email).Scan(u.id); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Microsecond)
	issue := func(p mailtoken.Purpose, user int64) string {
		tok, err := mailtoken.Issue(ctx, q, p, user, "alice@example.com", now, 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	older := issue(mailtoken.ResetPassword, alice)
	reset := issue(mailtoken.ResetPassword, alice) // voids older
	verify := issue(mailtoken.VerifyEmail, alice)
	bobs := issue(mailtoken.ResetPassword, bob) // voids none of alice's
	tests := []struct {
		name  string
		p     mailtoken.Purpose
		token string
		at    time.Time
		user  int64 // 0: refused
	}{
		{"voided by a newer one", mailtoken.ResetPassword, older, now, 0},
		{"another purpose", mailtoken.VerifyEmail, reset, now, 0},
		{"expired", mailtoken.ResetPassword, reset, now.Add(30 * time.Minute), 0},
		{"good", mailtoken.ResetPassword, reset, now.Add(29 * time.Minute), alice},
		{"used", mailtoken.ResetPassword, reset, now.Add(29 * time.Minute), 0},
		{"the other purpose's own", mailtoken.VerifyEmail, verify, now, alice},
		{"another account's, unaffected", mailtoken.ResetPassword, bobs, now, bob},
		{"unknown", mailtoken.ResetPassword, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", now, 0},
		{"malformed", mailtoken.ResetPassword, "short", now, 0},
	}
	for _, tt := range tests {
		g, err := mailtoken.Redeem(ctx, q, tt.p, tt.token, tt.at)
		switch {
		case tt.user == 0 && !errors.Is(err, mailtoken.ErrInvalid):
			t.Errorf("%s: %+v, %v; want ErrInvalid", tt.name, g, err)
		case tt.user != 0 && (err != nil || g.UserID != tt.user || g.Email != "alice@example.com"):
			t.Errorf("%s: %+v, %v; want user %d", tt.name, g, err, tt.user)
		}
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mail_tokens WHERE hash = sha256(convert_to($1, 'UTF8'))`, reset).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("the token is kept by its SHA-256: %d rows, %v", stored, err)
	}
}
