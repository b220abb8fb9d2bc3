package revocation

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/token"
)

func at(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

func TestRevoked(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := now
	l := New(func() time.Time { return clock })
	sid, uid, ver, jti := "0b6c0a8e-2f4e-4c53-9f0a-7d1b2c3d4e5f", int64(7), int64(3), "hiJBxaPFxi9V7sGd-cvAFQ"
	l.Apply([]db.ListRevocationsRow{
		{Seq: 1, SessionID: &sid, ExpiresAt: at(now.Add(time.Minute))},
		{Seq: 2, UserID: &uid, MinVersion: &ver, ExpiresAt: at(now.Add(2 * time.Minute))},
		{Seq: 3, TokenID: &jti, ExpiresAt: at(now.Add(time.Minute))},
	})
	tests := []struct {
		name string
		c    token.Claims
		want bool
	}{
		{"ended session", token.Claims{UserID: 1, SessionID: sid, Version: 9}, true},
		{"other session", token.Claims{UserID: 1, SessionID: "x", Version: 9}, false},
		{"user, older version", token.Claims{UserID: uid, Version: 2}, true},
		{"user, no version", token.Claims{UserID: uid}, true},
		{"user, the new version", token.Claims{UserID: uid, Version: 3}, false},
		{"other user", token.Claims{UserID: 8, Version: 1}, false},
		{"revoked jti, a client's", token.Claims{ClientID: "cl_x", ID: jti, Version: 1}, true},
		{"revoked jti, a user's", token.Claims{UserID: 8, ID: jti, Version: 1}, true},
		{"other jti", token.Claims{ClientID: "cl_x", ID: "other", Version: 1}, false},
	}
	for _, tt := range tests {
		if got := l.Revoked(&tt.c); got != tt.want {
			t.Errorf("%s: Revoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A lower version applied later does not lower the mark.
	low := int64(1)
	l.Apply([]db.ListRevocationsRow{{Seq: 4, UserID: &uid, MinVersion: &low, ExpiresAt: at(now.Add(time.Minute))}})
	if !l.Revoked(&token.Claims{UserID: uid, Version: 2}) {
		t.Error("a lower min_version lowered the mark")
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, func() { l.Revoked(&tt.c) }); n != 0 {
			t.Errorf("%s: Revoked allocates %v times", tt.name, n)
		}
	}
	// Entries go once every token they concern has expired.
	clock = now.Add(time.Minute + time.Second)
	l.Apply(nil)
	if s, u := l.Len(); s != 0 || u != 1 {
		t.Errorf("after a minute: %d sessions, %d users; want 0, 1", s, u)
	}
	if l.Revoked(&token.Claims{ClientID: "cl_x", ID: jti, Version: 1}) {
		t.Error("a jti is still refused after its token expired")
	}
	clock = now.Add(3 * time.Minute)
	l.Apply(nil)
	if s, u := l.Len(); s != 0 || u != 0 {
		t.Errorf("after three minutes: %d sessions, %d users; want none", s, u)
	}
}

func TestVerifierRefusesRevoked(t *testing.T) {
	tokens, err := token.New(token.Config{Secret: make([]byte, 32), Issuer: "i", Audience: "a", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l := New(nil)
	v := Verifier{Tokens: tokens, List: l}
	raw, _, _ := tokens.Issue(token.Subject{UserID: 1, SessionID: "s", Version: 1})
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	s := "s"
	l.Apply([]db.ListRevocationsRow{{Seq: 1, SessionID: &s, ExpiresAt: at(time.Now().Add(time.Hour))}})
	if _, err := v.Verify(raw); !errors.Is(err, token.ErrInvalid) || !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify of a revoked token = %v", err)
	}
}
