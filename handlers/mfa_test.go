package handlers_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
)

// totpCode is the code an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// enrolled is an account with an authenticator app.
type enrolled struct {
	apitest.User
	secret   string
	recovery []string
}

// enrol enrols an authenticator app for u through the API, at clk's time,
// and checks what the enrolment answers.
func enrol(t *testing.T, e *apitest.Env, clk *clock, u apitest.User) enrolled {
	t.Helper()
	tok := e.Token(t, u)
	r := do(t, "POST", e.URL+"/identify/me/mfa/totp", nil, bearer(tok))
	m := r.json(t)
	secret, _ := m["secret"].(string)
	uri, _ := m["otpauth_uri"].(string)
	qr, _ := m["qr_code"].(string)
	if r.status != 200 || secret == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("enrol = %d %s", r.status, r.body)
	}
	if k, err := otp.NewKeyFromURL(uri); err != nil || k.Secret() != secret || k.AccountName() != u.Email || k.Period() != 30 {
		t.Errorf("otpauth URI %q (%v): want the secret, the email and 30 s", uri, err)
	}
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr, "data:image/png;base64,"))
	if err != nil || !strings.HasPrefix(qr, "data:image/png;base64,") || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("qr_code is not a PNG data URL (%v)", err)
	}
	r = do(t, "POST", e.URL+"/identify/me/mfa/totp/confirm", strings.NewReader(`{"code":"000000"}`), jsonHeaders(tok))
	if r.status != 400 && totpCode(t, secret, clk.Now()) != "000000" {
		t.Errorf("confirm with a wrong code = %d, want 400", r.status)
	}
	r = do(t, "POST", e.URL+"/identify/me/mfa/totp/confirm", strings.NewReader(`{"code":"`+totpCode(t, secret, clk.Now())+`"}`), jsonHeaders(tok))
	m = r.json(t)
	codes, _ := m["recovery_codes"].([]any)
	if r.status != 200 || len(codes) != 10 {
		t.Fatalf("confirm = %d %s, want 10 recovery codes", r.status, r.body)
	}
	out := enrolled{User: u, secret: secret}
	for _, c := range codes {
		out.recovery = append(out.recovery, c.(string))
	}
	clk.Advance(30 * time.Second) // the confirming code is used
	return out
}

// passwordStep logs u in with the password and returns the mfa_token of
// the mfa_required answer.
func passwordStep(t *testing.T, e *apitest.Env, u apitest.User) string {
	t.Helper()
	r := do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", u.Email, "password", u.Password), map[string]string{"Content-Type": formCT})
	m := assertOAuthError(t, r, 400, "mfa_required")
	tok, _ := m["mfa_token"].(string)
	if tok == "" {
		t.Fatalf("mfa_required without an mfa_token: %s", r.body)
	}
	return tok
}

// secondStep sends the mfa grant with kv (otp or recovery_code).
func secondStep(t *testing.T, e *apitest.Env, mfaToken string, kv ...string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form(append([]string{"grant_type", "urn:rolegate:grant-type:mfa", "mfa_token", mfaToken}, kv...)...),
		map[string]string{"Content-Type": formCT})
}

// TestTOTPSignIn: enrolment answers a secret, its URI and QR code, and
// recovery codes once confirmed with a code; from then on the password
// grant asks for the second factor, the mfa grant completes the sign-in
// with amr and acr of mfa (kept by a refresh), a code is accepted once,
// a recovery code is used up, and an mfa_token works once.
func TestTOTPSignIn(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := enrol(t, e, clk, e.CreateUser(t, "kate@example.com", "user"))
	tok := e.Token(t, u.User)
	if r := do(t, "POST", e.URL+"/identify/me/mfa/totp", nil, bearer(tok)); r.status != 401 {
		t.Errorf("enrolling again without a step-up = %d, want 401", r.status)
	}
	f := do(t, "GET", e.URL+"/identify/me/mfa", nil, bearer(tok)).json(t)
	if fmt.Sprint(f["totp"].(map[string]any)["enrolled"]) != "true" || f["recovery_codes_left"] != float64(10) || strings.Contains(fmt.Sprint(f), u.secret) {
		t.Errorf("factors = %v", f)
	}

	code := totpCode(t, u.secret, clk.Now())
	r := secondStep(t, e, passwordStep(t, e, u.User), "otp", code)
	tokens := tokensOf(t, r)
	p := jwtPayload(t, tokens.access)
	if fmt.Sprint(p["amr"]) != "[pwd otp mfa]" || p["acr"] != "urn:rolegate:acr:mfa" {
		t.Errorf("claims after the second step: %v", p)
	}
	if q := jwtPayload(t, tokensOf(t, refresh(t, e, tokens.refresh)).access); q["acr"] != p["acr"] || q["auth_time"] != p["auth_time"] {
		t.Errorf("a refresh changed the assurance: %v", q)
	}
	// The same code again, in its window, is refused (replay).
	assertOAuthError(t, secondStep(t, e, passwordStep(t, e, u.User), "otp", code), 400, "invalid_grant")
	clk.Advance(30 * time.Second)
	mt := passwordStep(t, e, u.User)
	tokensOf(t, secondStep(t, e, mt, "otp", totpCode(t, u.secret, clk.Now())))
	clk.Advance(30 * time.Second)
	assertOAuthError(t, secondStep(t, e, mt, "otp", totpCode(t, u.secret, clk.Now())), 400, "invalid_grant") // the mfa_token is used

	// A recovery code, typed loosely, works once.
	rc := strings.ToUpper(strings.ReplaceAll(u.recovery[0], "-", " "))
	strong := tokensOf(t, secondStep(t, e, passwordStep(t, e, u.User), "recovery_code", rc)).access
	if r := do(t, "POST", e.URL+"/identify/me/mfa/totp", nil, bearer(strong)); r.status != 409 {
		t.Errorf("enrolling again, stepped up = %d, want 409", r.status)
	}
	assertOAuthError(t, secondStep(t, e, passwordStep(t, e, u.User), "recovery_code", u.recovery[0]), 400, "invalid_grant")
	if f := do(t, "GET", e.URL+"/identify/me/mfa", nil, bearer(tok)).json(t); f["recovery_codes_left"] != float64(9) {
		t.Errorf("recovery codes left: %v, want 9", f["recovery_codes_left"])
	}

	// Five wrong codes void the mfa_token.
	mt = passwordStep(t, e, u.User)
	for range 5 {
		assertOAuthError(t, secondStep(t, e, mt, "otp", "000000"), 400, "invalid_grant")
	}
	clk.Advance(30 * time.Second)
	if r := secondStep(t, e, mt, "otp", totpCode(t, u.secret, clk.Now())); r.status != 400 && r.status != 429 {
		t.Errorf("the right code after five wrong ones: %d, want the mfa_token void", r.status)
	}
	// An mfa_token naming another account, or with neither code, is refused.
	assertOAuthError(t, secondStep(t, e, "1"+passwordStep(t, e, u.User), "otp", "123456"), 400, "invalid_grant")
	assertOAuthError(t, secondStep(t, e, passwordStep(t, e, u.User)), 400, "invalid_request")
}

// TestMFAThrottled: wrong second factors count against the account's
// budget (per client network, as for wrong passwords), across new
// mfa_tokens: past ten, 429, long before the address's budget of fifty;
// the right password steps in between count as successes.
func TestMFAThrottled(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := enrol(t, e, clk, e.CreateUser(t, "kate@example.com", "user"))
	for wrong := 0; wrong <= 12; wrong++ {
		r := secondStep(t, e, passwordStep(t, e, u.User), "otp", "000000")
		if r.status == 429 {
			if wrong != 10 {
				t.Errorf("throttled after %d wrong codes, want 10", wrong)
			}
			return
		}
		assertOAuthError(t, r, 400, "invalid_grant")
	}
	t.Fatal("wrong codes were never throttled")
}

// TestStepUp: an operation of x-acr refuses a token of an account with a
// second factor that does not carry acr mfa, with RFC 9470's challenge;
// a token from a sign-in with the factor passes, until max-age is past; an
// account without a factor is not asked.
func TestStepUp(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	admin := enrol(t, e, clk, e.CreateUser(t, "root@example.com", "admin"))
	victim := e.CreateUser(t, "kate@example.com", "user")
	other := e.CreateUser(t, "lee@example.com", "user")
	del := func(tok string, id int64) response {
		return do(t, "DELETE", e.URL+fmt.Sprintf("/users/%d", id), nil, bearer(tok))
	}
	r := del(e.Token(t, admin.User), victim.ID)
	assertProblem(t, r, 401)
	if m := r.json(t); m["type"] != "urn:rolegate:problem:insufficient-user-authentication" {
		t.Errorf("problem type %v", m["type"])
	}
	if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) ||
		!strings.Contains(h, `acr_values="urn:rolegate:acr:mfa"`) || !strings.Contains(h, "max_age=300") {
		t.Errorf("WWW-Authenticate = %q", h)
	}
	strong := tokensOf(t, secondStep(t, e, passwordStep(t, e, admin.User), "otp", totpCode(t, admin.secret, clk.Now()))).access
	if r := del(strong, victim.ID); r.status != 204 {
		t.Fatalf("with acr mfa: %d %s", r.status, r.body)
	}
	clk.Advance(301 * time.Second)
	if r := del(strong, other.ID); r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "max_age=300") {
		t.Errorf("past max-age: %d, want 401 again", r.status)
	}
	// An administrator without a second factor is not asked for one.
	plain := e.CreateUser(t, "plain@example.com", "admin")
	if r := del(e.Token(t, plain), other.ID); r.status != 204 {
		t.Errorf("an admin without a factor: %d %s", r.status, r.body)
	}
	var events int
	if err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE type = 'stepup.required'`).Scan(&events); err != nil || events < 2 {
		t.Errorf("%d stepup.required events (%v), want 2", events, err)
	}
}

// TestRequireMFARoles: with ROLEGATE_REQUIRE_MFA_ROLES=admin, an
// administrator's token without acr mfa reaches only the enrolment
// operations; once enrolled and signed in with the factor, everything.
func TestRequireMFARoles(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now, RequireMFARoles: []string{"admin"}})
	admin := e.CreateUser(t, "root@example.com", "admin", "user")
	user := e.CreateUser(t, "kate@example.com", "user")
	tok := loginTokens(t, e, admin).access
	r := do(t, "GET", e.URL+"/users", nil, bearer(tok))
	assertProblem(t, r, 401)
	if !strings.Contains(r.body, "/identify/me/mfa/totp") {
		t.Errorf("the refusal does not say how to enrol: %s", r.body)
	}
	if r := do(t, "GET", e.URL+"/identify/me/mfa", nil, bearer(tok)); r.status != 200 {
		t.Errorf("GET /identify/me/mfa = %d, want 200 (an enrolment operation)", r.status)
	}
	if r := do(t, "GET", e.URL+"/notes", nil, bearer(loginTokens(t, e, user).access)); r.status != 200 {
		t.Errorf("a user, whose role needs no factor: %d", r.status)
	}
	a := enrol(t, e, clk, admin)
	strong := tokensOf(t, secondStep(t, e, passwordStep(t, e, a.User), "otp", totpCode(t, a.secret, clk.Now()))).access
	if r := do(t, "GET", e.URL+"/users", nil, bearer(strong)); r.status != 200 {
		t.Errorf("enrolled, with acr mfa: %d %s", r.status, r.body)
	}
}

// TestRemoveFactors: the owner removes the app with a code or the
// password (wrong ones refused); an administrator resets another
// account's factors (step-up first), audited; afterwards the password
// alone signs in.
func TestRemoveFactors(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := enrol(t, e, clk, e.CreateUser(t, "kate@example.com", "user"))
	if r := do(t, "DELETE", e.URL+"/identify/me/mfa/totp", strings.NewReader(`{"password":"`+u.Password+`"}`), jsonHeaders(e.Token(t, u.User))); r.status != 401 {
		t.Errorf("removing without a step-up: %d, want 401", r.status)
	}
	tok := tokensOf(t, secondStep(t, e, passwordStep(t, e, u.User), "recovery_code", u.recovery[0])).access
	remove := func(body string) response {
		return do(t, "DELETE", e.URL+"/identify/me/mfa/totp", strings.NewReader(body), jsonHeaders(tok))
	}
	if r := remove(`{"password":"wrong"}`); r.status != 400 {
		t.Errorf("a wrong password: %d", r.status)
	}
	if r := remove(`{"code":"000000","password":"x"}`); r.status != 400 {
		t.Errorf("both proofs: %d, want 400", r.status)
	}
	if r := remove(`{"code":"` + totpCode(t, u.secret, clk.Now()) + `"}`); r.status != 204 {
		t.Fatalf("remove with a code = %d %s", r.status, r.body)
	}
	if r := remove(`{"password":"` + u.Password + `"}`); r.status != 404 {
		t.Errorf("remove again: %d, want 404", r.status)
	}
	loginTokens(t, e, u.User) // the password alone again

	v := enrol(t, e, clk, u.User)
	admin := enrol(t, e, clk, e.CreateUser(t, "root@example.com", "admin"))
	reset := func(tok string) response {
		return do(t, "DELETE", e.URL+fmt.Sprintf("/users/%d/mfa", v.ID), nil, bearer(tok))
	}
	if r := reset(e.Token(t, admin.User)); r.status != 401 {
		t.Errorf("reset without a step-up: %d, want 401", r.status)
	}
	strong := tokensOf(t, secondStep(t, e, passwordStep(t, e, admin.User), "otp", totpCode(t, admin.secret, clk.Now()))).access
	if r := reset(strong); r.status != 204 {
		t.Fatalf("reset = %d %s", r.status, r.body)
	}
	if r := reset(strong); r.status != 404 {
		t.Errorf("reset again: %d, want 404", r.status)
	}
	loginTokens(t, e, v.User)
	var events int
	if err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE type IN ('mfa.removed', 'mfa.enrolled')`).Scan(&events); err != nil || events != 5 {
		t.Errorf("%d mfa.enrolled and mfa.removed events (%v), want 5", events, err)
	}
}

// TestSignInPageSecondStep: on the hosted page, an account with a second
// factor gets a page of its own for the code after the password; a wrong
// code shows it again, the right one finishes the code flow, whose tokens
// say mfa. A browser signed in with the password alone (before the
// enrolment) is asked to sign in again when the client asks for
// acr_values mfa, as after a step-up; once it has, single sign-on
// answers such a request at once.
func TestSignInPageSecondStep(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newRP(t, false, apitest.Options{Now: clk.Now})
	p.signIn(t, "before", "n0") // a browser session of the password alone
	u := enrol(t, p.e, clk, p.user)
	mfaAsked := oauth2.SetAuthURLParam("acr_values", "urn:rolegate:acr:mfa")
	verifier := oauth2.GenerateVerifier()
	pg := p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), mfaAsked))
	if pg.status != 200 || !strings.Contains(pg.body, `name="password"`) {
		t.Fatalf("acr_values mfa with a password session: %d, want the sign-in page", pg.status)
	}
	pg = p.submit(t, pg, u.Email, u.Password)
	if pg.status != 200 || !strings.Contains(pg.body, "Enter your code") || !strings.Contains(pg.body, `name="mfa_token"`) {
		t.Fatalf("after the password: %d %s", pg.status, pg.body)
	}
	v := hiddenFields(pg.body)
	v.Set("code", "000000")
	if again := p.post(t, p.e.URL+"/sign-in", v); again.status != 400 || !strings.Contains(again.body, "not valid") {
		t.Errorf("a wrong code: %d, want the page again", again.status)
	}
	v.Set("code", totpCode(t, u.secret, clk.Now()))
	back := returned(t, p.post(t, p.e.URL+"/sign-in", v))
	tok, err := p.cfg.Exchange(t.Context(), back.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c := jwtPayload(t, tok.AccessToken); c["acr"] != "urn:rolegate:acr:mfa" {
		t.Errorf("the access token's acr: %v", c["acr"])
	}
	if id, _ := tok.Extra("id_token").(string); jwtPayload(t, id)["acr"] != "urn:rolegate:acr:mfa" || fmt.Sprint(jwtPayload(t, id)["amr"]) != "[pwd otp mfa]" {
		t.Errorf("the id token's claims: %v", jwtPayload(t, id))
	}
	// Signed in with the factor now: the next such request needs no page.
	sso := p.get(t, p.cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), mfaAsked))
	if back := returned(t, sso); back.Get("code") == "" {
		t.Errorf("single sign-on with acr mfa: %v", back)
	}
	// The page's mfa_token is no good at the token endpoint.
	assertOAuthError(t, secondStep(t, p.e, v.Get("mfa_token"), "otp", "123456"), 400, "invalid_grant")
}

// TestStepUpMatrix: every operation that declares x-acr asks a token of
// an account with a second factor, signed in without it, to step up
// before anything else about the request is looked at.
func TestStepUpMatrix(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	admin := enrol(t, e, clk, e.CreateUser(t, "root@example.com", "admin", "user", "system", "resource-server"))
	tok := e.Token(t, admin.User)
	n := 0
	for _, rule := range e.Spec.Policy.Rules {
		if rule.ACR == nil {
			continue
		}
		n++
		r := do(t, rule.Method, e.URL+samplePath(e.Spec.Doc, rule.Path, rule.Method), nil, bearer(tok))
		if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
			t.Errorf("%s %s: %d %q, want a step-up", rule.Method, rule.Path, r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	if n < 5 {
		t.Errorf("%d operations declare x-acr, want at least 5", n)
	}
}
