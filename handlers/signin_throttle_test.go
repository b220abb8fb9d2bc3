package handlers_test

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
)

// TestSignInThrottled: the sign-in form counts against the same
// x-rate-limit budgets as /token, and its refusal is a page a person can
// read, with Retry-After; a request the gate refuses (over the body limit)
// is a page too.
func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	pg := p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	var last page
	for range 11 {
		last = p.submit(t, pg, p.user.Email, "not the password")
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" ||
		!strings.HasPrefix(last.header.Get("Content-Type"), "text/html") || !strings.Contains(last.body, "retry after") {
		t.Fatalf("11th wrong password: %d %v %s, want a 429 page with Retry-After", last.status, last.header, last.body)
	}
	// The right password is refused too while the account's budget is spent.
	if r := p.submit(t, pg, p.user.Email, p.user.Password); r.status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d, want 429", r.status)
	}

	big := p.post(t, p.e.URL+"/sign-in", map[string][]string{"email": {strings.Repeat("a", 70000)}})
	if big.status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(big.header.Get("Content-Type"), "text/html") {
		t.Fatalf("oversized form: %d %q, want a 413 page", big.status, big.header.Get("Content-Type"))
	}
}

// TestPasswordGrantOff: with ROLEGATE_PASSWORD_GRANT=off the password grant
// is refused as unsupported, and people sign in through the hosted page.
func TestPasswordGrantOff(t *testing.T) {
	t.Parallel()
	p := newRP(t, false, apitest.Options{NoPasswordGrant: true})
	r := do(t, "POST", p.e.URL+"/token", form("grant_type", "password", "username", p.user.Email, "password", p.user.Password),
		map[string]string{"Content-Type": formCT})
	assertOAuthError(t, r, 400, "unsupported_grant_type")
	code, verifier := p.signIn(t, "s", "n")
	if _, err := p.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("the code flow with the password grant off: %v", err)
	}
}

// TestSignInSuccessForgives: the right password on the page forgives the
// account's failures, as a password grant's success does; a refused
// request (no PKCE) forgives nothing.
func TestSignInSuccessForgives(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	pg := p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for range 9 {
		p.submit(t, pg, p.user.Email, "not the password")
	}
	returned(t, p.submit(t, pg, p.user.Email, p.user.Password))
	// Signed in: sign in again as a new browser for the rest.
	p.browser.Jar, _ = cookiejar.New(nil)
	pg = p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for i := range 9 {
		if r := p.submit(t, pg, p.user.Email, "not the password"); r.status != http.StatusBadRequest {
			t.Fatalf("wrong password %d after a success: %d, want 400 (the budget was reset)", i+1, r.status)
		}
	}
}

// TestEmailVerifiedClaim: email_verified in the id token and at UserInfo
// is whether the account has proved its address.
func TestEmailVerifiedClaim(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	for _, verified := range []bool{false, true} {
		if verified {
			if _, err := p.e.Pool.Exec(t.Context(), `UPDATE users SET email_verified_at = now() WHERE id = $1`, p.user.ID); err != nil {
				t.Fatal(err)
			}
		}
		code, verifier := p.signIn(t, "s", "n")
		tok, err := p.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := tok.Extra("id_token").(string)
		if got := jwtPayload(t, id)["email_verified"]; got != verified {
			t.Errorf("verified %v: id token email_verified = %v", verified, got)
		}
		info := do(t, "GET", p.e.URL+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken}).json(t)
		if info["email_verified"] != verified {
			t.Errorf("verified %v: UserInfo email_verified = %v", verified, info["email_verified"])
		}
	}
}
