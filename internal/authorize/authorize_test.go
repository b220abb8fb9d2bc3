package authorize

import (
	"errors"
	"testing"
	"time"
)

// RFC 7636 appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerifyPKCE(t *testing.T) {
	tests := []struct {
		name, verifier string
		want           bool
	}{
		{"RFC 7636 appendix B", rfcVerifier, true},
		{"another verifier", rfcVerifier[:42] + "l", false},
		{"too short", rfcVerifier[:42], false},
		{"reserved character", rfcVerifier[:42] + "+", false},
		{"the challenge itself (plain)", rfcChallenge, false},
	}
	for _, tt := range tests {
		if got := VerifyPKCE(tt.verifier, rfcChallenge); got != tt.want {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com/cb?x=1", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost:3000/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://app.example.com/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"https://user:pw@app.example.com/cb", false},
		{"/cb", false},
		{"javascript:alert(1)", false},
		{"myapp:/cb", false},
		{"https:///cb", false},
		{"https://app.example.com/c b", false},
	}
	for _, tt := range tests {
		if why := CheckRedirectURI(tt.uri); (why == "") != tt.ok {
			t.Errorf("%q: %q, want ok=%v", tt.uri, why, tt.ok)
		}
	}
}

func TestCheck(t *testing.T) {
	client := &Client{ID: "cl_x", RedirectURIs: []string{"https://app.example.com/cb", "https://app.example.com/cb2"}}
	good := Params{ResponseType: "code", ClientID: "cl_x", RedirectURI: "https://app.example.com/cb", State: "s",
		CodeChallenge: rfcChallenge, CodeChallengeMethod: "S256", Scope: "user openid email openid"}
	with := func(f func(*Params)) Params { p := good; f(&p); return p }
	tests := []struct {
		name   string
		p      Params
		client *Client
		page   bool   // a PageError, no redirect
		code   string // the redirected error, "" for none
	}{
		{name: "good", p: good, client: client},
		{name: "unknown client", p: good, page: true},
		{name: "unregistered redirect", p: with(func(p *Params) { p.RedirectURI = "https://evil.example/cb" }), client: client, page: true},
		{name: "no redirect, two registered", p: with(func(p *Params) { p.RedirectURI = "" }), client: client, page: true},
		{name: "token", p: with(func(p *Params) { p.ResponseType = "token" }), client: client, code: UnsupportedResponseType},
		{name: "no PKCE", p: with(func(p *Params) { p.CodeChallenge = "" }), client: client, code: InvalidRequest},
		{name: "plain", p: with(func(p *Params) { p.CodeChallengeMethod = "plain" }), client: client, code: InvalidRequest},
		{name: "short challenge", p: with(func(p *Params) { p.CodeChallenge = "abc" }), client: client, code: InvalidRequest},
		{name: "request", p: with(func(p *Params) { p.Request = "x" }), client: client, code: RequestNotSupported},
		{name: "request_uri", p: with(func(p *Params) { p.RequestURI = "x" }), client: client, code: RequestURINotSupported},
		{name: "prompt none login", p: with(func(p *Params) { p.Prompt = "none login" }), client: client, code: InvalidRequest},
		{name: "bad max_age", p: with(func(p *Params) { p.MaxAge = "-1" }), client: client, code: InvalidRequest},
		{name: "fragment mode", p: with(func(p *Params) { p.ResponseMode = "fragment" }), client: client, code: InvalidRequest},
	}
	for _, tt := range tests {
		r, err := Check(tt.p, tt.client)
		var pe *PageError
		var e *Error
		switch {
		case tt.page:
			if !errors.As(err, &pe) {
				t.Errorf("%s: %v, want a page error", tt.name, err)
			}
		case tt.code != "":
			if !errors.As(err, &e) || e.Code != tt.code || r.RedirectURI != good.RedirectURI || r.State != "s" {
				t.Errorf("%s: %v (redirect %q), want %s to the redirect URI", tt.name, err, r.RedirectURI, tt.code)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	r, _ := Check(good, client)
	if got := r.Scope; len(got.OIDC) != 2 || got.OIDC[0] != "email" || len(got.Roles) != 1 || got.Roles[0] != "user" {
		t.Errorf("scope %+v", got)
	}
	now := time.Now()
	age := time.Second
	r.MaxAge = &age
	if !r.Fresh(now, "", now) || r.Fresh(now.Add(-2*time.Second), "", now) {
		t.Error("max_age of 1 s: fresh at once, stale after 2 s")
	}
	r.MaxAge = nil
	r.ACRValues = []string{"urn:rolegate:acr:mfa"}
	if r.Fresh(now, "urn:rolegate:acr:pwd", now) || !r.Fresh(now, "urn:rolegate:acr:mfa", now) {
		t.Error("acr_values mfa: a password sign-in is not enough, one with a second factor is")
	}
}
