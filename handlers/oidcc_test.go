package handlers_test

// The tests of this file mirror the OpenID Foundation's Basic OP
// certification plan (OIDCCBasicTestPlan, "oidcc-basic-certification-
// test-plan" of the conformance suite): one test, or one row of a table,
// for each module of the plan that applies to rolegate, named after it,
// through HTTP against the whole stack, with go-oidc and x/oauth2 as the
// relying party and a cookie jar as the browser. The modules:
//
//	oidcc-server, oidcc-server-client-secret-post,
//	oidcc-ensure-request-with-valid-pkce-succeeds       TestOIDCCServer
//	oidcc-response-type-missing,
//	oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported,
//	oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported
//	                                                    TestOIDCCRefusedRequests
//	oidcc-idtoken-signature (RS256, and ES256)          TestOIDCCIDTokenSignature
//	oidcc-userinfo-get, -post-header, -post-body        TestOIDCCUserInfo
//	oidcc-ensure-request-without-nonce-succeeds-for-code-flow,
//	oidcc-scope-profile, oidcc-scope-email,
//	oidcc-ensure-other-scope-order-succeeds             TestOIDCCScopesAndNonce
//	oidcc-display-page, oidcc-display-popup, oidcc-login-hint,
//	oidcc-ui-locales, oidcc-claims-locales, oidcc-claims-essential,
//	oidcc-ensure-request-with-acr-values-succeeds,
//	oidcc-ensure-request-with-unknown-parameter-succeeds
//	                                                    TestOIDCCIgnoredParameters
//	oidcc-prompt-login                                  TestOIDCCPromptLogin
//	oidcc-prompt-none-not-logged-in, -logged-in,
//	oidcc-id-token-hint                                 TestOIDCCPromptNone
//	oidcc-max-age-1, oidcc-max-age-10000                TestOIDCCMaxAge
//	oidcc-codereuse, oidcc-codereuse-30seconds          TestOIDCCAuthCodeReuse
//	oidcc-ensure-registered-redirect-uri                TestOIDCCEnsureRegisteredRedirectURI
//	oidcc-ensure-post-request-succeeds                  TestOIDCCEnsurePostRequestSucceeds
//	oidcc-refresh-token                                 TestOIDCCRefreshToken
//
// Those that do not apply: oidcc-idtoken-unsigned (no client may ask for
// alg none, and discovery lists only signing algorithms),
// oidcc-scope-address, oidcc-scope-phone and oidcc-scope-all (neither
// scope is in scopes_supported, for which the suite skips them), and
// oidcc-ensure-request-object-with-redirect-uri (request objects are
// refused). Besides: RP-Initiated Logout (TestOIDCCLogout,
// TestOIDCCLogoutExpiredHint, named after the modules of the suite's
// logout plan), the browser session in the sessions list
// (TestSignInSession), and zitadel/oidc's relying party as a second one
// nobody here wrote (TestZitadelRelyingParty).

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	zrp "github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
)

// suite is one module's provider and relying party: rolegate on a test
// clock, a confidential client registered with it (the rp, with its
// browser) and the provider as go-oidc discovered it.
type suite struct {
	*rp
	provider *oidc.Provider
	clock    *clock
}

// newSuite starts rolegate on a test clock, with o's options besides, and
// discovers it.
func newSuite(t *testing.T, o ...apitest.Options) *suite {
	t.Helper()
	var opts apitest.Options
	if len(o) > 0 {
		opts = o[0]
	}
	clk := newClock()
	opts.Now = clk.Now
	p := newRP(t, false, opts)
	provider, err := oidc.NewProvider(context.Background(), p.e.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &suite{rp: p, provider: provider, clock: clk}
}

// newBrowser is a browser without cookies that stops at every redirect.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// fresh is s with another browser, signed out: the same person in a
// browser of their own, so that rows of a table do not share a sign-in.
func (s *suite) fresh(t *testing.T) *suite {
	t.Helper()
	p := *s.rp
	p.browser = newBrowser(t)
	return &suite{rp: &p, provider: s.provider, clock: s.clock}
}

// authURL is an authorization request of the client with PKCE and state,
// and the parameters kv (name, value, …; they replace the defaults, such
// as scope, and an empty value removes one); it returns the URL and the
// PKCE verifier.
func (s *suite) authURL(t *testing.T, state string, kv ...string) (string, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	u := mustURL(t, s.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), verifier
}

// signInPage asks for u, which must show the sign-in page, and signs in
// there: it returns the code.
func (s *suite) signInPage(t *testing.T, u string) string {
	t.Helper()
	pg := s.get(t, u)
	if pg.status != http.StatusOK || !formAction.MatchString(pg.body) {
		t.Fatalf("GET %s = %d, want the sign-in page; Location %q", u, pg.status, pg.header.Get("Location"))
	}
	return codeOf(t, s.submit(t, pg, s.user.Email, s.user.Password))
}

// noPage asks for u, which must redirect back with a code at once (single
// sign-on): it returns the code.
func (s *suite) noPage(t *testing.T, u string) string {
	t.Helper()
	return codeOf(t, s.get(t, u))
}

func codeOf(t *testing.T, pg page) string {
	t.Helper()
	back := returned(t, pg)
	if back.Get("code") == "" || back.Get("error") != "" {
		t.Fatalf("back with %v, want a code", back)
	}
	return back.Get("code")
}

// exchange exchanges code at /token, as x/oauth2 does.
func (s *suite) exchange(t *testing.T, code, verifier string) *oauth2.Token {
	t.Helper()
	tok, err := s.cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// exchangeRaw exchanges code with HTTP Basic client authentication and
// returns the answer as it is.
func (s *suite) exchangeRaw(t *testing.T, code, verifier string) response {
	t.Helper()
	return do(t, "POST", s.e.URL+"/token", form("grant_type", "authorization_code", "code", code, "code_verifier", verifier,
		"redirect_uri", callback), map[string]string{"Content-Type": formCT, "Authorization": basic(s.client.id, s.client.secret)})
}

// refresh sends the refresh token grant as the client.
func (s *suite) refresh(t *testing.T, refresh string) response {
	t.Helper()
	return do(t, "POST", s.e.URL+"/token", form("grant_type", "refresh_token", "refresh_token", refresh),
		map[string]string{"Content-Type": formCT, "Authorization": basic(s.client.id, s.client.secret)})
}

// idClaims are the claims of an id token the tests look at.
type idClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Nonce         *string  `json:"nonce"`
	AZP           string   `json:"azp"`
	SID           string   `json:"sid"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"`
	IssuedAt      int64    `json:"iat"`
	// raw is the token.
	raw string
}

// idToken verifies the id token of tok with go-oidc, on the suite's clock,
// for the client: its signature by a key of the JWKS under an algorithm
// discovery lists, iss, aud and exp. nonce must be the token's ("" for
// none).
func (s *suite) idToken(t *testing.T, tok *oauth2.Token, nonce string) idClaims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := s.provider.Verifier(&oidc.Config{ClientID: s.client.id, Now: s.clock.Now}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	c := idClaims{raw: raw}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	switch {
	case c.Subject != itoa(s.user.ID):
		t.Errorf("id token sub = %q, want %d", c.Subject, s.user.ID)
	case c.AZP != s.client.id:
		t.Errorf("id token azp = %q, want the client %s", c.AZP, s.client.id)
	case nonce == "" && c.Nonce != nil:
		t.Errorf("id token nonce = %q, but the request sent none", *c.Nonce)
	case nonce != "" && (c.Nonce == nil || *c.Nonce != nonce):
		t.Errorf("id token nonce = %v, want %q", c.Nonce, nonce)
	case c.SID == "" || c.AuthTime == 0 || !slices.Equal(c.AMR, []string{"pwd"}):
		t.Errorf("id token sid %q auth_time %d amr %v", c.SID, c.AuthTime, c.AMR)
	}
	return c
}

// isRedirect reports whether pg redirects: 302, or 303 See Other, which
// the answer to a POST may be (RFC 9700 section 4.12).
func isRedirect(pg page) bool {
	return pg.status == http.StatusFound || pg.status == http.StatusSeeOther
}

// signedOut reports whether the browser has no sign-in cookie.
func (s *suite) signedOut(t *testing.T) bool {
	t.Helper()
	for _, c := range s.browser.Jar.Cookies(mustURL(t, s.e.URL)) {
		if c.Name == "rolegate_session" {
			return false
		}
	}
	return true
}

// TestOIDCCServer is oidcc-server, with client_secret_basic, and
// oidcc-server-client-secret-post: discovery, the code flow with PKCE
// (oidcc-ensure-request-with-valid-pkce-succeeds) through the sign-in
// page, the exchange with either client authentication, and the id token
// verified.
func TestOIDCCServer(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	for _, tt := range []struct {
		module string
		style  oauth2.AuthStyle
	}{
		{"oidcc-server", oauth2.AuthStyleInHeader},
		{"oidcc-server-client-secret-post", oauth2.AuthStyleInParams},
	} {
		t.Run(tt.module, func(t *testing.T) {
			s := s.fresh(t)
			s.cfg.Endpoint.AuthStyle = tt.style
			code, verifier := s.signIn(t, "st-"+tt.module, "n-"+tt.module)
			tok := s.exchange(t, code, verifier)
			if !strings.EqualFold(tok.TokenType, "Bearer") || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Expiry.IsZero() {
				t.Errorf("token response %+v", tok)
			}
			c := s.idToken(t, tok, "n-"+tt.module)
			if c.Email != s.user.Email || c.EmailVerified == nil {
				t.Errorf("id token email %q email_verified %v, want the email scope's claims", c.Email, c.EmailVerified)
			}
			if got := jwtPayload(t, tok.AccessToken)["client_id"]; got != s.client.id {
				t.Errorf("access token client_id = %v", got)
			}
			// The other method's credentials are not enough: a wrong
			// secret either way is invalid_client.
			code, verifier = s.signIn(t, "again", "")
			bad := s.cfg
			bad.ClientSecret = "wrong"
			if _, err := bad.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Errorf("exchange with a wrong secret: %v, want invalid_client", err)
			}
		})
	}
}

// TestOIDCCRefusedRequests: requests rolegate refuses go back to the client
// with the error and the state (oidcc-response-type-missing, and the
// request object modules, which accept a refusal when discovery says
// request objects are not supported).
func TestOIDCCRefusedRequests(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	var meta map[string]any
	if err := s.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta["request_parameter_supported"] != false || meta["request_uri_parameter_supported"] != false {
		t.Errorf("discovery: request_parameter_supported %v, request_uri_parameter_supported %v, want false",
			meta["request_parameter_supported"], meta["request_uri_parameter_supported"])
	}
	for _, tt := range []struct {
		module, want string
		kv           []string
	}{
		{"oidcc-response-type-missing", "invalid_request", []string{"response_type", ""}},
		{"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", "request_not_supported",
			[]string{"request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."}},
		{"oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", "request_uri_not_supported",
			[]string{"request_uri", "https://rp.example.com/request.jwt"}},
	} {
		t.Run(tt.module, func(t *testing.T) {
			s := s.fresh(t)
			u, _ := s.authURL(t, "xyz", tt.kv...)
			back := returned(t, s.get(t, u))
			if back.Get("error") != tt.want || back.Get("state") != "xyz" || back.Get("error_description") == "" || back.Get("iss") != s.e.URL {
				t.Errorf("back with %v, want error %s, the state and iss", back, tt.want)
			}
		})
	}
}

// TestOIDCCIDTokenSignature is oidcc-idtoken-signature: the id token is
// signed with a key of the JWKS, named by its kid, under the algorithm
// discovery lists, RS256 by default and ES256 by ROLEGATE_ID_TOKEN_ALG,
// and go-oidc verifies it.
func TestOIDCCIDTokenSignature(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ alg, kty string }{{"RS256", "RSA"}, {"ES256", "EC"}} {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			o := apitest.Options{}
			if tt.alg != "RS256" {
				o.IDTokenAlg = tt.alg
			}
			s := newSuite(t, o)
			var meta struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := s.provider.Claims(&meta); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(meta.Algs, tt.alg) || slices.Contains(meta.Algs, "none") {
				t.Errorf("id_token_signing_alg_values_supported = %v, want %s and never none", meta.Algs, tt.alg)
			}
			code, verifier := s.signIn(t, "s", "n")
			c := s.idToken(t, s.exchange(t, code, verifier), "n")
			h := jwtHeader(t, c.raw)
			if h["alg"] != tt.alg || h["typ"] != "JWT" {
				t.Errorf("id token header %v, want alg %s typ JWT", h, tt.alg)
			}
			_, keys := jwks(t, s.e)
			if !slices.ContainsFunc(keys, func(k map[string]string) bool {
				return k["kid"] == h["kid"] && k["alg"] == tt.alg && k["kty"] == tt.kty && k["use"] == "sig"
			}) {
				t.Errorf("no %s key with kid %v in the JWKS %v", tt.alg, h["kid"], keys)
			}
		})
	}
}

// TestOIDCCUserInfo is oidcc-userinfo-get, oidcc-userinfo-post-header and
// oidcc-userinfo-post-body (RFC 6750 section 2.2): UserInfo answers the id
// token's sub, whichever way the access token comes.
func TestOIDCCUserInfo(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	code, verifier := s.signIn(t, "s", "n")
	tok := s.exchange(t, code, verifier)
	sub := s.idToken(t, tok, "n").Subject
	for _, tt := range []struct {
		module string
		r      func() response
	}{
		{"oidcc-userinfo-get", func() response { return do(t, "GET", s.e.URL+"/userinfo", nil, bearer(tok.AccessToken)) }},
		{"oidcc-userinfo-post-header", func() response {
			return do(t, "POST", s.e.URL+"/userinfo", nil, bearer(tok.AccessToken))
		}},
		{"oidcc-userinfo-post-body", func() response {
			return do(t, "POST", s.e.URL+"/userinfo", form("access_token", tok.AccessToken), map[string]string{"Content-Type": formCT})
		}},
	} {
		t.Run(tt.module, func(t *testing.T) {
			r := tt.r()
			m := r.json(t)
			if r.status != 200 || m["sub"] != sub || m["email"] != s.user.Email || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("UserInfo = %d %s (Cache-Control %q), want sub %s", r.status, r.body, r.header.Get("Cache-Control"), sub)
			}
		})
	}
	// go-oidc's own UserInfo call agrees.
	info, err := s.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != sub {
		t.Errorf("go-oidc UserInfo: %+v, %v", info, err)
	}
	// In both places: 400 (RFC 6750 section 2: one method per request).
	both := do(t, "POST", s.e.URL+"/userinfo", form("access_token", tok.AccessToken),
		map[string]string{"Content-Type": formCT, "Authorization": "Bearer " + tok.AccessToken})
	if both.status != 400 {
		t.Errorf("UserInfo with the token in the header and the form = %d, want 400", both.status)
	}
	// Without a token, in neither place: 401 with the challenge.
	r := do(t, "POST", s.e.URL+"/userinfo", form("access_token", ""), map[string]string{"Content-Type": formCT})
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("UserInfo without a token = %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

// TestOIDCCScopesAndNonce: scopes in any order, and the claims each brings
// (oidcc-scope-email, oidcc-scope-profile,
// oidcc-ensure-other-scope-order-succeeds); the nonce comes back when sent
// and is absent when not (oidcc-ensure-request-without-nonce-succeeds-for-
// code-flow).
func TestOIDCCScopesAndNonce(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	for _, tt := range []struct {
		module, scope, nonce string
		email                bool
	}{
		{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", "openid", "", false},
		{"oidcc-scope-email", "openid email", "n1", true},
		{"oidcc-scope-profile", "openid profile", "n2", false},
		{"oidcc-ensure-other-scope-order-succeeds", "email openid", "n3", true},
	} {
		t.Run(tt.module, func(t *testing.T) {
			s := s.fresh(t)
			kv := []string{"scope", tt.scope}
			if tt.nonce != "" {
				kv = append(kv, "nonce", tt.nonce)
			}
			u, verifier := s.authURL(t, "s", kv...)
			tok := s.exchange(t, s.signInPage(t, u), verifier)
			c := s.idToken(t, tok, tt.nonce)
			if (c.Email != "") != tt.email || (c.EmailVerified != nil) != tt.email {
				t.Errorf("scope %q: id token email %q email_verified %v", tt.scope, c.Email, c.EmailVerified)
			}
			granted := strings.Fields(tok.Extra("scope").(string))
			for _, want := range strings.Fields(tt.scope) {
				if !slices.Contains(granted, want) {
					t.Errorf("scope %q: granted %v lacks %s", tt.scope, granted, want)
				}
			}
		})
	}
}

// TestOIDCCIgnoredParameters: parameters rolegate does not act on are
// ignored, and the flow succeeds (the display, locale, acr_values and
// claims modules, and oidcc-ensure-request-with-unknown-parameter-
// succeeds); login_hint fills in the email (oidcc-login-hint).
func TestOIDCCIgnoredParameters(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	for _, tt := range []struct {
		module string
		kv     []string
	}{
		{"oidcc-ensure-request-with-unknown-parameter-succeeds", []string{"extra", "foobar", "frobnicate", "1"}},
		{"oidcc-display-page", []string{"display", "page"}},
		{"oidcc-display-popup", []string{"display", "popup"}},
		{"oidcc-ui-locales", []string{"ui_locales", "se"}},
		{"oidcc-claims-locales", []string{"claims_locales", "se"}},
		{"oidcc-ensure-request-with-acr-values-succeeds", []string{"acr_values", "1 2"}},
		{"oidcc-claims-essential", []string{"claims", `{"userinfo":{"name":{"essential":true}}}`}},
		{"oidcc-login-hint", []string{"login_hint", "kate@example.com"}},
	} {
		t.Run(tt.module, func(t *testing.T) {
			s := s.fresh(t)
			u, verifier := s.authURL(t, "s", append(tt.kv, "nonce", "n")...)
			pg := s.get(t, u)
			if pg.status != 200 || !formAction.MatchString(pg.body) {
				t.Fatalf("%d %q, want the sign-in page", pg.status, pg.header.Get("Location"))
			}
			if tt.module == "oidcc-login-hint" && !strings.Contains(pg.body, `name="email" type="email" value="kate@example.com"`) {
				t.Errorf("login_hint: the email field is not filled in")
			}
			code := codeOf(t, s.submit(t, pg, s.user.Email, s.user.Password))
			s.idToken(t, s.exchange(t, code, verifier), "n")
		})
	}
}

// TestOIDCCPromptLogin is oidcc-prompt-login: signed in, prompt=login shows
// the sign-in page again, and the second id token's auth_time is the new
// sign-in's, in the same browser session.
func TestOIDCCPromptLogin(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	code, verifier := s.signIn(t, "s1", "n1")
	first := s.idToken(t, s.exchange(t, code, verifier), "n1")
	s.clock.Advance(5 * time.Second)
	u, verifier := s.authURL(t, "s2", "prompt", "login", "nonce", "n2")
	second := s.idToken(t, s.exchange(t, s.signInPage(t, u), verifier), "n2")
	if second.AuthTime < first.AuthTime+5 || second.AuthTime > s.clock.Now().Unix() {
		t.Errorf("auth_time %d after prompt=login, want the second sign-in's (the first was %d, now %d)", second.AuthTime, first.AuthTime, s.clock.Now().Unix())
	}
	if second.SID != first.SID {
		t.Errorf("sid %s after signing in again, want the browser session's %s", second.SID, first.SID)
	}
	// Without prompt, single sign-on answers with the new auth_time.
	u, verifier = s.authURL(t, "s3", "nonce", "n3")
	if third := s.idToken(t, s.exchange(t, s.noPage(t, u), verifier), "n3"); third.AuthTime != second.AuthTime {
		t.Errorf("auth_time %d by single sign-on, want %d", third.AuthTime, second.AuthTime)
	}
}

// TestOIDCCPromptNone: prompt=none never shows a page: signed out it goes
// back with login_required (oidcc-prompt-none-not-logged-in), signed in
// with a code (oidcc-prompt-none-logged-in), also with the id token of the
// sign-in as id_token_hint (oidcc-id-token-hint).
func TestOIDCCPromptNone(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	u, _ := s.authURL(t, "xyz", "prompt", "none")
	back := returned(t, s.get(t, u))
	if back.Get("error") != "login_required" || back.Get("state") != "xyz" || back.Get("code") != "" {
		t.Errorf("oidcc-prompt-none-not-logged-in: back with %v, want login_required and the state", back)
	}
	code, verifier := s.signIn(t, "s", "n")
	first := s.idToken(t, s.exchange(t, code, verifier), "n")
	for _, tt := range []struct {
		module string
		kv     []string
	}{
		{"oidcc-prompt-none-logged-in", nil},
		{"oidcc-id-token-hint", []string{"id_token_hint", first.raw}},
	} {
		t.Run(tt.module, func(t *testing.T) {
			u, verifier := s.authURL(t, "s2", append(tt.kv, "prompt", "none", "nonce", "n2")...)
			c := s.idToken(t, s.exchange(t, s.noPage(t, u), verifier), "n2")
			if c.Subject != first.Subject || c.AuthTime != first.AuthTime || c.SID != first.SID {
				t.Errorf("sub %s auth_time %d sid %s, want the sign-in's %s %d %s", c.Subject, c.AuthTime, c.SID,
					first.Subject, first.AuthTime, first.SID)
			}
		})
	}
}

// TestOIDCCMaxAge: max_age=1, 2 s (on the test clock) after signing in,
// shows the sign-in page again and the id token's auth_time is the new
// sign-in's (oidcc-max-age-1); max_age=10000 answers at once with the
// first auth_time (oidcc-max-age-10000).
func TestOIDCCMaxAge(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	for _, tt := range []struct {
		module, maxAge string
		page           bool
	}{
		{"oidcc-max-age-1", "1", true},
		{"oidcc-max-age-10000", "10000", false},
	} {
		t.Run(tt.module, func(t *testing.T) {
			s := s.fresh(t)
			code, verifier := s.signIn(t, "s1", "n1")
			first := s.idToken(t, s.exchange(t, code, verifier), "n1")
			s.clock.Advance(2 * time.Second)
			if tt.page {
				// Too long ago, and no page allowed: login_required.
				u, _ := s.authURL(t, "s0", "max_age", tt.maxAge, "prompt", "none")
				if back := returned(t, s.get(t, u)); back.Get("error") != "login_required" {
					t.Errorf("max_age=%s with prompt=none: back with %v, want login_required", tt.maxAge, back)
				}
			}
			u, verifier := s.authURL(t, "s2", "max_age", tt.maxAge, "nonce", "n2")
			if tt.page {
				code = s.signInPage(t, u)
			} else {
				code = s.noPage(t, u)
			}
			c := s.idToken(t, s.exchange(t, code, verifier), "n2")
			switch {
			case tt.page && (c.AuthTime < first.AuthTime+2 || c.AuthTime > s.clock.Now().Unix()):
				t.Errorf("auth_time %d, want the second sign-in's (first %d, now %d)", c.AuthTime, first.AuthTime, s.clock.Now().Unix())
			case !tt.page && c.AuthTime != first.AuthTime:
				t.Errorf("auth_time %d, want the sign-in's %d", c.AuthTime, first.AuthTime)
			}
		})
	}
}

// TestOIDCCAuthCodeReuse: a code presented again is invalid_grant and
// revokes the tokens of its first exchange, at once (oidcc-codereuse) and
// 30 s later (oidcc-codereuse-30seconds), and even once it has expired; a
// code exchanged first after 60 s is invalid_grant. The test clock moves;
// the rows run in turn, each with tokens of its own.
func TestOIDCCAuthCodeReuse(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	for _, tt := range []struct {
		name  string
		first bool // exchanged once before the wait
		wait  time.Duration
		ok    bool // the exchange after the wait succeeds
	}{
		{"oidcc-codereuse", true, 0, false},
		{"oidcc-codereuse-30seconds", true, 30 * time.Second, false},
		{"reused after it expired", true, 90 * time.Second, false},
		{"first exchange after 59 s", false, 59 * time.Second, true},
		{"first exchange after 60 s", false, 60 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := s.fresh(t)
			code, verifier := s.signIn(t, "s", "n")
			var tok *oauth2.Token
			var next tokens
			if tt.first {
				tok = s.exchange(t, code, verifier)
				// A refresh before the reuse: its tokens are the first
				// exchange's too.
				next = tokensOf(t, s.refresh(t, tok.RefreshToken))
			}
			s.clock.Advance(tt.wait)
			r := s.exchangeRaw(t, code, verifier)
			if tt.ok {
				tokensOf(t, r)
				return
			}
			assertOAuthError(t, r, 400, "invalid_grant")
			if !tt.first {
				return
			}
			for name, access := range map[string]string{"the exchange's": tok.AccessToken, "the refresh's": next.access} {
				if works(t, s.e, access) {
					t.Errorf("%s access token still works after the code was reused", name)
				}
				if r := do(t, "GET", s.e.URL+"/userinfo", nil, bearer(access)); r.status != 401 {
					t.Errorf("UserInfo with %s access token = %d, want 401", name, r.status)
				}
			}
			assertOAuthError(t, s.refresh(t, next.refresh), 400, "invalid_grant")
		})
	}
}

// TestOIDCCEnsureRegisteredRedirectURI is oidcc-ensure-registered-
// redirect-uri: a redirect_uri that is not registered exactly gets an
// error page, and nothing is sent anywhere.
func TestOIDCCEnsureRegisteredRedirectURI(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	s.signIn(t, "s", "n")
	for _, tt := range []struct{ name, uri string }{
		{"unregistered", "http://127.0.0.1:9/evil"},
		{"a slash added", callback + "/"},
		{"a query added", callback + "?x=1"},
		{"another port", "http://127.0.0.1:10/callback"},
		{"another case", "http://127.0.0.1:9/Callback"},
		{"https", "https://127.0.0.1:9/callback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := s.authURL(t, "s", "redirect_uri", tt.uri)
			for _, pg := range []page{s.get(t, u), s.fresh(t).get(t, u)} { // signed in and signed out
				if pg.status != 400 || pg.header.Get("Location") != "" || !strings.HasPrefix(pg.header.Get("Content-Type"), "text/html") {
					t.Errorf("%d Location %q Content-Type %q, want an error page and no redirect", pg.status, pg.header.Get("Location"), pg.header.Get("Content-Type"))
				}
				if strings.Contains(pg.body, tt.uri) || strings.Contains(pg.body, "<form") {
					t.Errorf("the error page links the redirect_uri or has a form: %s", pg.body)
				}
			}
		})
	}
}

// TestOIDCCEnsurePostRequestSucceeds is oidcc-ensure-post-request-succeeds:
// the authorization request may come as a POST form.
func TestOIDCCEnsurePostRequestSucceeds(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	u, verifier := s.authURL(t, "s", "nonce", "n")
	pg := s.post(t, s.e.URL+"/authorize", mustURL(t, u).Query())
	if pg.status != 200 || !formAction.MatchString(pg.body) {
		t.Fatalf("POST /authorize = %d, want the sign-in page", pg.status)
	}
	code := codeOf(t, s.submit(t, pg, s.user.Email, s.user.Password))
	s.idToken(t, s.exchange(t, code, verifier), "n")
	// Signed in, a POST answers at once.
	u, verifier = s.authURL(t, "s2", "nonce", "n2")
	s.idToken(t, s.exchange(t, codeOf(t, s.post(t, s.e.URL+"/authorize", mustURL(t, u).Query())), verifier), "n2")
}

// TestOIDCCRefreshToken is oidcc-refresh-token: the code's refresh token
// gives a new access token for the same person and client, and a new
// refresh token; another client cannot use it.
func TestOIDCCRefreshToken(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	code, verifier := s.signIn(t, "s", "n")
	tok := s.exchange(t, code, verifier)
	sub := s.idToken(t, tok, "n").Subject
	s.clock.Advance(time.Minute)
	next, err := s.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	at := jwtPayload(t, next.AccessToken)
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || at["sub"] != sub || at["client_id"] != s.client.id {
		t.Errorf("refreshed: refresh token rotated %v, access token sub %v client_id %v", next.RefreshToken != tok.RefreshToken, at["sub"], at["client_id"])
	}
	if raw, ok := next.Extra("id_token").(string); ok && raw != "" {
		// OpenID Connect Core section 12.2: if one comes, it is the same
		// person's, for the same client.
		if c := s.idToken(t, next, "n"); c.Subject != sub {
			t.Errorf("refreshed id token sub %s", c.Subject)
		}
	}
	r := do(t, "GET", s.e.URL+"/userinfo", nil, bearer(next.AccessToken))
	if r.status != 200 || r.json(t)["sub"] != sub {
		t.Errorf("UserInfo with the refreshed token = %d %s", r.status, r.body)
	}
	// Another client's credentials: refused, and the token is not used up.
	e := s.e
	other := createClient(t, e, e.Token(t, e.CreateUser(t, "other-admin@example.com", "admin", "user")),
		`{"name":"Other","redirect_uris":["`+callback+`"]}`)
	r = do(t, "POST", e.URL+"/token", form("grant_type", "refresh_token", "refresh_token", next.RefreshToken),
		map[string]string{"Content-Type": formCT, "Authorization": basic(other.id, other.secret)})
	assertOAuthError(t, r, 400, "invalid_grant")
	tokensOf(t, s.refresh(t, next.RefreshToken))
}

// logoutRow is a sign-out and what must follow it.
type logoutRow struct {
	module string
	// params are the query of GET /logout; hint stands for the id token.
	params func(hint string) url.Values
	// confirm: the confirmation page comes first, and is confirmed.
	confirm bool
	// redirect is where the browser goes after ("" for the signed-out
	// page), or error that the request is refused with an error page.
	redirect string
	error    bool
}

// TestOIDCCLogout: RP-Initiated Logout, after the modules of the
// conformance suite's logout plan. A sign-out ends the browser session
// and the sessions of every code exchanged under it (their access tokens
// are refused, their refresh tokens invalid_grant, even a code issued
// before and exchanged after), clears the sign-in cookie, so that the
// next authorization request shows the page, and redirects only to a
// registered post_logout_redirect_uri, with the state. A refused one
// signs nothing out.
func TestOIDCCLogout(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	const bye = "http://127.0.0.1:9/bye"
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tt := range []logoutRow{
		{module: "oidcc-rp-initiated-logout", redirect: bye + "?state=st",
			params: func(h string) url.Values {
				return q("id_token_hint", h, "post_logout_redirect_uri", bye, "state", "st")
			}},
		{module: "oidcc-rp-initiated-logout-no-state", redirect: bye,
			params: func(h string) url.Values { return q("id_token_hint", h, "post_logout_redirect_uri", bye) }},
		{module: "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
			params: func(h string) url.Values { return q("id_token_hint", h, "state", "st") }},
		{module: "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", error: true,
			params: func(h string) url.Values {
				return q("id_token_hint", h, "post_logout_redirect_uri", "http://127.0.0.1:9/evil", "state", "st")
			}},
		{module: "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", error: true,
			params: func(h string) url.Values { return q("id_token_hint", h, "post_logout_redirect_uri", bye+"?x=1") }},
		{module: "oidcc-rp-initiated-logout-modified-id-token-hint", error: true,
			params: func(h string) url.Values { return q("id_token_hint", tamper(h), "post_logout_redirect_uri", bye) }},
		{module: "oidcc-rp-initiated-logout-no-id-token-hint", confirm: true, redirect: bye + "?state=st",
			params: func(string) url.Values {
				return q("client_id", s.client.id, "post_logout_redirect_uri", bye, "state", "st")
			}},
		{module: "oidcc-rp-initiated-logout-no-params", confirm: true,
			params: func(string) url.Values { return url.Values{} }},
		{module: "no hint, no client_id, a post_logout_redirect_uri", error: true,
			params: func(string) url.Values { return q("post_logout_redirect_uri", bye) }},
	} {
		t.Run(tt.module, func(t *testing.T) {
			logout(t, s.fresh(t), tt)
		})
	}
}

// TestOIDCCLogoutExpiredHint: an id_token_hint that expired still signs
// out (RP-Initiated Logout 1.0 section 2).
func TestOIDCCLogoutExpiredHint(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	logout(t, s, logoutRow{module: "expired hint", redirect: "http://127.0.0.1:9/bye?state=late",
		params: func(h string) url.Values {
			// Past the id token's exp, and the leeway.
			s.clock.Advance(15*time.Minute + time.Minute)
			return url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"late"}}
		}})
}

// logout signs s's browser in, exchanges a code, takes another, signs out
// as tt says, and checks what followed.
func logout(t *testing.T, s *suite, tt logoutRow) {
	t.Helper()
	code, verifier := s.signIn(t, "s", "n")
	tok := s.exchange(t, code, verifier)
	hint := s.idToken(t, tok, "n").raw
	pending, pendingVerifier := s.signIn(t, "s2", "n2") // by single sign-on, exchanged after
	// A browser that keeps the sign-in cookie whatever it is told.
	kept := s.fresh(t)
	base := mustURL(t, s.e.URL)
	kept.browser.Jar.SetCookies(base, s.browser.Jar.Cookies(base))
	params := tt.params(hint)
	pg := s.get(t, s.e.URL+"/logout?"+params.Encode())
	if tt.confirm {
		if pg.status != 200 || !strings.Contains(pg.body, `action="`+s.e.URL+`/logout"`) || !strings.Contains(pg.body, `name="csrf_token"`) {
			t.Fatalf("GET /logout = %d, want the confirmation page with a CSRF token: %s", pg.status, pg.body)
		}
		fields := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(pg.body, -1) {
			fields.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		// Posted from elsewhere, without the page's token: asked again.
		forged := url.Values{}
		for k, v := range fields {
			if k != "csrf_token" {
				forged[k] = v
			}
		}
		if again := s.post(t, s.e.URL+"/logout", forged); again.status != 200 || again.header.Get("Location") != "" || s.signedOut(t) {
			t.Fatalf("POST /logout without the CSRF token = %d %q, want the confirmation page again", again.status, again.header.Get("Location"))
		}
		if !works(t, s.e, tok.AccessToken) {
			t.Fatal("a logout form without its CSRF token signed the person out")
		}
		pg = s.post(t, s.e.URL+"/logout", fields)
	}
	switch {
	case tt.error:
		if pg.status != 400 || pg.header.Get("Location") != "" || !strings.HasPrefix(pg.header.Get("Content-Type"), "text/html") {
			t.Fatalf("logout = %d Location %q, want an error page", pg.status, pg.header.Get("Location"))
		}
		if s.signedOut(t) || !works(t, s.e, tok.AccessToken) {
			t.Error("a refused logout signed the person out")
		}
		tokensOf(t, s.exchangeRaw(t, pending, pendingVerifier))
		codeOf(t, s.get(t, s.cfg.AuthCodeURL("s3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
		return
	case tt.redirect != "":
		if !isRedirect(pg) || pg.header.Get("Location") != tt.redirect {
			t.Fatalf("logout = %d Location %q, want a redirect to %s", pg.status, pg.header.Get("Location"), tt.redirect)
		}
	default:
		if pg.status != 200 || !strings.Contains(pg.body, "Signed out") {
			t.Fatalf("logout = %d, want the signed-out page: %s", pg.status, pg.body)
		}
	}
	if !s.signedOut(t) {
		t.Error("the sign-in cookie is still there")
	}
	if works(t, s.e, tok.AccessToken) {
		t.Error("the access token still works after logout")
	}
	assertOAuthError(t, s.refresh(t, tok.RefreshToken), 400, "invalid_grant")
	// No single sign-on: the page again, also for a browser that kept the
	// old cookie.
	u := s.cfg.AuthCodeURL("s4", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for name, b := range map[string]*suite{"the browser": s, "a browser that kept the cookie": kept} {
		if pg := b.get(t, u); pg.status != 200 || !formAction.MatchString(pg.body) {
			t.Errorf("/authorize after logout, %s: %d %q, want the sign-in page", name, pg.status, pg.header.Get("Location"))
		}
	}
	// The code taken before, exchanged after: no session under the ended
	// one.
	assertOAuthError(t, s.exchangeRaw(t, pending, pendingVerifier), 400, "invalid_grant")
}

// tamper changes the last character of a JWT's signature.
func tamper(raw string) string {
	last := raw[len(raw)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return raw[:len(raw)-1] + string(repl)
}

// TestSignInSession: signing in on the page starts a browser session that
// the person's sessions list shows, beside the session of each code
// exchanged under it; ending the browser session with DELETE
// /identify/me/sessions/{id} ends those with it.
func TestSignInSession(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	code, verifier := s.signIn(t, "s", "n")
	first := s.exchange(t, code, verifier)
	sid := s.idToken(t, first, "n").SID
	code, verifier = s.signIn(t, "s2", "n2") // a second app session, by single sign-on
	second := s.exchange(t, code, verifier)
	list := sessionList(t, do(t, "GET", s.e.URL+"/identify/me/sessions", nil, bearer(first.AccessToken)))
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m["id"].(string))
	}
	if len(list) != 3 || !slices.Contains(ids, sid) || !slices.Contains(ids, jwtPayload(t, second.AccessToken)["sid"].(string)) {
		t.Fatalf("sessions %v, want the browser session %s and the two of the codes", ids, sid)
	}
	for _, m := range list {
		if m["id"] == jwtPayload(t, first.AccessToken)["sid"] && m["current"] != true {
			t.Errorf("the caller's session %v is not current", m)
		}
	}
	r := do(t, "DELETE", s.e.URL+"/identify/me/sessions/"+sid, nil, bearer(second.AccessToken))
	if r.status != 204 {
		t.Fatalf("DELETE the browser session = %d %s", r.status, r.body)
	}
	for name, tok := range map[string]*oauth2.Token{"first": first, "second": second} {
		if works(t, s.e, tok.AccessToken) {
			t.Errorf("the %s app's access token works after its browser session ended", name)
		}
		assertOAuthError(t, s.refresh(t, tok.RefreshToken), 400, "invalid_grant")
	}
	if pg := s.get(t, s.cfg.AuthCodeURL("s3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); pg.status != 200 || !formAction.MatchString(pg.body) {
		t.Errorf("/authorize after the browser session ended = %d, want the sign-in page", pg.status)
	}
}

// TestZitadelRelyingParty signs in with zitadel/oidc's relying party, a
// second one nobody here wrote, serving its own login and callback
// handlers: discovery, PKCE (its verifier in its own cookie), the code
// flow through the sign-in page, CodeExchange with its verification of the
// RS256 id token, and its UserInfo call.
func TestZitadelRelyingParty(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{URLIssuer: true})
	user := e.CreateUser(t, "zita@example.com", "user")
	app := httptest.NewUnstartedServer(nil)
	redirect := "http://" + app.Listener.Addr().String() + "/callback"
	c := createClient(t, e, e.Token(t, e.CreateUser(t, "root@example.com", "admin", "user")),
		`{"name":"Zitadel RP","redirect_uris":["`+redirect+`"]}`)
	key := []byte("0123456789abcdef0123456789abcdef")
	cookies := httphelper.NewCookieHandler(key, key, httphelper.WithUnsecure())
	party, err := zrp.NewRelyingPartyOIDC(context.Background(), e.URL, c.id, c.secret, redirect, []string{"openid", "email"},
		zrp.WithPKCE(cookies), zrp.WithVerifierOpts(zrp.WithNonce(func(context.Context) string { return "zn" })))
	if err != nil {
		t.Fatalf("zitadel discovery: %v", err)
	}
	if !party.IsPKCE() {
		t.Fatal("the relying party does not use PKCE")
	}
	type result struct {
		Subject, Email, Alg, InfoSubject, State string
		Refresh                                 bool
	}
	mux := http.NewServeMux()
	mux.Handle("/login", zrp.AuthURLHandler(func() string { return "zstate" }, party, zrp.WithURLParam("nonce", "zn")))
	mux.Handle("/callback", zrp.CodeExchangeHandler(zrp.UserinfoCallback(
		func(w http.ResponseWriter, r *http.Request, tokens *zoidc.Tokens[*zoidc.IDTokenClaims], state string, _ zrp.RelyingParty, info *zoidc.UserInfo) {
			_ = json.NewEncoder(w).Encode(result{
				Subject: tokens.IDTokenClaims.Subject, Email: tokens.IDTokenClaims.Email, Alg: string(tokens.IDTokenClaims.SignatureAlg),
				InfoSubject: info.Subject, State: state, Refresh: tokens.RefreshToken != "",
			})
		}), party))
	app.Config.Handler = mux
	app.Start()
	t.Cleanup(app.Close)

	p := &rp{e: e, user: user, browser: newBrowser(t)}
	pg := p.get(t, app.URL+"/login")
	for isRedirect(pg) { // the app, then rolegate's page
		pg = p.get(t, pg.header.Get("Location"))
	}
	pg = p.submit(t, pg, user.Email, user.Password)
	loc := pg.header.Get("Location")
	if !isRedirect(pg) || !strings.HasPrefix(loc, redirect+"?") {
		t.Fatalf("sign-in = %d %q, want a redirect to the app's callback", pg.status, loc)
	}
	pg = p.get(t, loc)
	var got result
	if err := json.Unmarshal([]byte(pg.body), &got); err != nil || pg.status != 200 {
		t.Fatalf("the app's callback = %d %s", pg.status, pg.body)
	}
	want := result{Subject: itoa(user.ID), Email: user.Email, Alg: "RS256", InfoSubject: itoa(user.ID), State: "zstate", Refresh: true}
	if got != want {
		t.Errorf("zitadel relying party got %+v, want %+v", got, want)
	}
}
