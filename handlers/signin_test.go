package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
)

// callback is the redirect URI of the test's relying party; nothing
// listens there: the browser stops at the redirect.
const callback = "http://127.0.0.1:9/callback"

// rp is a relying party registered with rolegate, and the browser of the
// person signing in through it.
type rp struct {
	e       *apitest.Env
	user    apitest.User
	client  machine
	cfg     oauth2.Config
	browser *http.Client
}

// newRP starts rolegate with its issuer on its URL, as in production,
// registers a confidential client (public when asked) and a person.
func newRP(t *testing.T, public bool, opts ...apitest.Options) *rp {
	t.Helper()
	o := apitest.Options{URLIssuer: true}
	if len(opts) > 0 {
		o = opts[0]
		o.URLIssuer = true
	}
	e := apitest.New(t, o)
	admin := e.CreateUser(t, "root@example.com", "admin", "user")
	body := `{"name":"Grafana","redirect_uris":["` + callback + `"],"post_logout_redirect_uris":["http://127.0.0.1:9/bye"]}`
	var c machine
	if public {
		body = `{"name":"Grafana","public":true,"redirect_uris":["` + callback + `"]}`
		r := do(t, "POST", e.URL+"/clients", strings.NewReader(body), jsonHeaders(e.Token(t, admin)))
		m := r.json(t)
		if r.status != 201 || m["client_secret"] != nil || m["public"] != true {
			t.Fatalf("POST /clients (public) = %d %s", r.status, r.body)
		}
		c.id = m["client_id"].(string)
	} else {
		c = createClient(t, e, e.Token(t, admin), body)
	}
	style := oauth2.AuthStyleInHeader
	if public {
		style = oauth2.AuthStyleInParams
	}
	return &rp{
		e: e, user: e.CreateUser(t, "kate@example.com", "user"), client: c,
		cfg: oauth2.Config{
			ClientID: c.id, ClientSecret: c.secret, RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID, "email"},
			Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/token", AuthStyle: style},
		},
		browser: newBrowser(t),
	}
}

// page is a page the browser got.
type page struct {
	status int
	header http.Header
	body   string
}

func (p *rp) get(t *testing.T, u string) page {
	t.Helper()
	resp, err := p.browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func (p *rp) post(t *testing.T, u string, v url.Values) page {
	t.Helper()
	resp, err := p.browser.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit fills in the sign-in page's form as a person would and posts it.
func (p *rp) submit(t *testing.T, pg page, email, password string) page {
	t.Helper()
	m := formAction.FindStringSubmatch(pg.body)
	if pg.status != 200 || m == nil {
		t.Fatalf("not a sign-in page: %d %s", pg.status, pg.body)
	}
	v := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(pg.body, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	v.Set("email", email)
	v.Set("password", password)
	return p.post(t, html.UnescapeString(m[1]), v)
}

// returned is the client's side of a redirect back: its query, or fails.
func returned(t *testing.T, pg page) url.Values {
	t.Helper()
	loc := pg.header.Get("Location")
	if pg.status != http.StatusFound && pg.status != http.StatusSeeOther || !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("want a redirect to %s, got %d %q %s", callback, pg.status, loc, pg.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// signIn runs the code flow up to the code: the authorization request,
// the sign-in page, the redirect back. It returns the code and the
// verifier.
func (p *rp) signIn(t *testing.T, state, nonce string, extra ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)
	pg := p.get(t, p.cfg.AuthCodeURL(state, opts...))
	if pg.status == http.StatusOK {
		pg = p.submit(t, pg, p.user.Email, p.user.Password)
	} // else signed in already: single sign-on
	back := returned(t, pg)
	if back.Get("state") != state || back.Get("iss") != p.e.URL || back.Get("code") == "" {
		t.Fatalf("redirect back = %v, want code, state %q and iss %q", back, state, p.e.URL)
	}
	return back.Get("code"), verifier
}

// TestCodeFlow signs a person in through the hosted page with x/oauth2 as
// the client and go-oidc as the relying party's verifier: discovery, the
// code flow through the HTML form with a cookie jar, the id token, and
// UserInfo; then single sign-on and the refresh of the code's session.
func TestCodeFlow(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, p.e.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if provider.Endpoint().AuthURL != p.e.URL+"/authorize" || provider.Endpoint().TokenURL != p.e.URL+"/token" {
		t.Fatalf("discovered endpoints %+v", provider.Endpoint())
	}

	// The sign-in page: never cached or framed, nothing from elsewhere.
	verifier := oauth2.GenerateVerifier()
	pg := p.get(t, p.cfg.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n1")))
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Type": "text/html; charset=utf-8"} {
		if got := pg.header.Get(k); got != want {
			t.Errorf("sign-in page %s = %q, want %q", k, got, want)
		}
	}
	if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, want := range []string{`<label for="email">`, `<label for="password">`, "Grafana"} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("sign-in page lacks %q", want)
		}
	}

	// A wrong password: the page again, with the one message for every
	// refusal, and no code.
	wrong := p.submit(t, pg, p.user.Email, "not the password")
	if wrong.status != http.StatusBadRequest || !strings.Contains(wrong.body, "The email or password is incorrect.") {
		t.Fatalf("wrong password: %d %s", wrong.status, wrong.body)
	}
	unknown := p.submit(t, pg, "nobody@example.com", "not the password")
	if unknown.status != wrong.status || !strings.Contains(unknown.body, "The email or password is incorrect.") {
		t.Fatalf("unknown email answered otherwise than a wrong password: %d", unknown.status)
	}

	back := returned(t, p.submit(t, pg, p.user.Email, p.user.Password))
	if back.Get("state") != "s1" {
		t.Fatalf("state = %q", back.Get("state"))
	}
	var session *http.Cookie
	for _, c := range p.browser.Jar.Cookies(mustURL(t, p.e.URL)) {
		if c.Name == "rolegate_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no sign-in cookie after signing in")
	}

	tok, err := p.cfg.Exchange(ctx, back.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatalf("token response %+v", tok)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: p.client.id}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified *bool    `json:"email_verified"`
		Nonce         string   `json:"nonce"`
		AZP           string   `json:"azp"`
		SID           string   `json:"sid"`
		AMR           []string `json:"amr"`
		AuthTime      int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != itoa(p.user.ID) || claims.Nonce != "n1" || claims.AZP != p.client.id || claims.Email != p.user.Email ||
		claims.EmailVerified == nil || claims.SID == "" || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.AuthTime == 0 {
		t.Errorf("id token sub %q claims %+v", idt.Subject, claims)
	}
	if alg := jwtHeader(t, rawID)["alg"]; alg != "RS256" {
		t.Errorf("id token alg = %v, want RS256 (the default)", alg)
	}
	at := jwtPayload(t, tok.AccessToken)
	if at["client_id"] != p.client.id || at["sub"] != itoa(p.user.ID) {
		t.Errorf("access token client_id %v sub %v", at["client_id"], at["sub"])
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != idt.Subject || info.Email != p.user.Email {
		t.Errorf("userinfo %+v", info)
	}

	// Single sign-on: the cookie answers the next request at once.
	code2, v2 := "", oauth2.GenerateVerifier()
	again := p.get(t, p.cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(v2)))
	if code2 = returned(t, again).Get("code"); code2 == "" {
		t.Fatal("no code from single sign-on")
	}
	if _, err := p.cfg.Exchange(ctx, code2, oauth2.VerifierOption(v2)); err != nil {
		t.Fatalf("exchange after single sign-on: %v", err)
	}

	// The code's session refreshes, for its client alone.
	src := p.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken})
	if _, err := src.Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// TestCodeFlowPublicClient: a public client sends its client_id and no
// secret, at the exchange and at refresh; a secret from it is refused.
func TestCodeFlowPublicClient(t *testing.T) {
	t.Parallel()
	p := newRP(t, true)
	ctx := context.Background()
	code, verifier := p.signIn(t, "st", "nn")
	tok, err := p.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	next, err := p.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || next.AccessToken == "" {
		t.Fatalf("refresh by a public client: %v", err)
	}
	code, verifier = p.signIn(t, "st2", "nn2")
	r := do(t, "POST", p.e.URL+"/token", form("grant_type", "authorization_code", "code", code, "code_verifier", verifier,
		"redirect_uri", callback, "client_id", p.client.id, "client_secret", "anything"), map[string]string{"Content-Type": formCT})
	assertInvalidClient(t, r)
}

// TestCodeRefusals: each way an exchange can be wrong is invalid_grant,
// and uses nothing up. (A code presented twice, or late: TestOIDCCAuthCodeReuse.)
func TestCodeRefusals(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	ctx := context.Background()
	exchange := func(code string, kv ...string) response {
		return do(t, "POST", p.e.URL+"/token", form(append([]string{"grant_type", "authorization_code", "code", code}, kv...)...),
			map[string]string{"Content-Type": formCT, "Authorization": basic(p.client.id, p.client.secret)})
	}
	code, verifier := p.signIn(t, "a", "b")
	other := oauth2.GenerateVerifier()
	for name, r := range map[string]response{
		"no verifier":    exchange(code, "redirect_uri", callback),
		"wrong verifier": exchange(code, "redirect_uri", callback, "code_verifier", other),
		"other redirect": exchange(code, "redirect_uri", "http://127.0.0.1:9/elsewhere", "code_verifier", verifier),
		"unknown code":   exchange(strings.Repeat("A", 43), "redirect_uri", callback, "code_verifier", verifier),
	} {
		if name == "no verifier" {
			assertOAuthError(t, r, 400, "invalid_request")
			continue
		}
		assertOAuthError(t, r, 400, "invalid_grant")
	}
	noSecret := do(t, "POST", p.e.URL+"/token", form("grant_type", "authorization_code", "code", code, "code_verifier", verifier,
		"client_id", p.client.id), map[string]string{"Content-Type": formCT})
	assertInvalidClient(t, noSecret)

	// The refusals above used nothing up: the right exchange still works.
	tok, err := p.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	me := do(t, "GET", p.e.URL+"/identify/me", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if me.status != 200 {
		t.Fatalf("/identify/me with the code's token = %d", me.status)
	}
}

// TestAuthorizeRefusals: an unknown client gets an error page and no
// redirect; everything else goes back to the client with error and state.
// (An unregistered redirect URI, request objects, prompt and unknown
// parameters: the OIDCC tests.)
func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := url.Values{"response_type": {"code"}, "client_id": {p.client.id}, "redirect_uri": {callback}, "scope": {"openid"},
		"state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	with := func(kv ...string) string {
		v := url.Values{}
		for k, vs := range base {
			v[k] = slices.Clone(vs)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return p.e.URL + "/authorize?" + v.Encode()
	}
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"unknown client", with("client_id", "cl_nobody")},
		{"no client", with("client_id", "")},
	} {
		pg := p.get(t, tt.url)
		if pg.status != 400 || pg.header.Get("Location") != "" || !strings.Contains(pg.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d Location %q, want an error page and no redirect", tt.name, pg.status, pg.header.Get("Location"))
		}
	}
	for _, tt := range []struct {
		name, want string
		url        string
	}{
		{"implicit", "unsupported_response_type", with("response_type", "token")},
		{"hybrid", "unsupported_response_type", with("response_type", "code id_token")},
		{"no PKCE", "invalid_request", with("code_challenge", "", "code_challenge_method", "")},
		{"plain PKCE", "invalid_request", with("code_challenge_method", "plain")},
		{"prompt none with login", "invalid_request", with("prompt", "none login")},
		{"an unknown prompt", "invalid_request", with("prompt", "sideways")},
		{"a negative max_age", "invalid_request", with("max_age", "-1")},
	} {
		back := returned(t, p.get(t, tt.url))
		if back.Get("error") != tt.want || back.Get("state") != "xyz" || back.Get("error_description") == "" {
			t.Errorf("%s: back with %v, want error %s and the state", tt.name, back, tt.want)
		}
	}
	// Signed in, a role the person lacks is invalid_scope.
	p.signIn(t, "s", "n")
	if back := returned(t, p.get(t, with("scope", "openid admin"))); back.Get("error") != "invalid_scope" || back.Get("state") != "xyz" {
		t.Errorf("scope with a role not held: %v, want invalid_scope", back)
	}
}

// TestSignInFormCSRF: a form posted without the page's token (from another
// site) is not processed.
func TestSignInFormCSRF(t *testing.T) {
	t.Parallel()
	p := newRP(t, false)
	verifier := oauth2.GenerateVerifier()
	pg := p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	v := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(pg.body, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	v.Set("csrf_token", "forged")
	v.Set("email", p.user.Email)
	v.Set("password", p.user.Password)
	r := p.post(t, p.e.URL+"/sign-in", v)
	if r.status != 400 || r.header.Get("Location") != "" {
		t.Fatalf("forged CSRF token: %d Location %q", r.status, r.header.Get("Location"))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func jwtPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwtHeader(t *testing.T, raw string) map[string]any  { return jwtPart(t, raw, 0) }
func jwtPayload(t *testing.T, raw string) map[string]any { return jwtPart(t, raw, 1) }
