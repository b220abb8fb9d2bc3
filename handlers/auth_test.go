package handlers_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/sdk"
	"github.com/rolegate/rolegate/token"
)

const formCT = "application/x-www-form-urlencoded"

func login(t *testing.T, e *apitest.Env, email, pw string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", email, "password", pw), map[string]string{"Content-Type": formCT})
}

func TestTokenGrantsAccess(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	u := e.CreateUser(t, "Alice@Example.com", "user")

	// Through the Go SDK; emails compare by their canonical form, so case does not matter.
	tok, err := sdk.Token(ctx, e.URL, "alice@EXAMPLE.com", u.Password, api.WithHTTPClient(apitest.HTTPClient(t)))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if tok.TokenType != api.Bearer || tok.ExpiresIn != 900 {
		t.Errorf("token response = %+v", tok)
	}
	claims, err := e.Tokens.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != u.ID || claims.Email != "Alice@Example.com" || strings.Join(claims.Roles, ",") != "user" {
		t.Errorf("claims = %+v", claims)
	}
	me, err := e.Client(t, tok.AccessToken).GetMeWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.JSON200 == nil {
		t.Fatalf("identify/me = %d %s", me.StatusCode(), me.Body)
	}
	if me.JSON200.Kind != api.IdentityKindUser || me.JSON200.Id == nil || *me.JSON200.Id != u.ID || me.JSON200.Email == nil || *me.JSON200.Email != "Alice@Example.com" || me.JSON200.ClientId != nil {
		t.Errorf("identify/me = %+v", *me.JSON200)
	}

	// The token response must not be cached: the generated client's raw
	// response shows the headers.
	grant, email := "password", "alice@EXAMPLE.com"
	raw, err := e.Client(t, "").CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{GrantType: &grant, Username: &email, Password: &u.Password})
	if err != nil {
		t.Fatal(err)
	}
	if raw.JSON200 == nil {
		t.Fatalf("login = %d %s", raw.StatusCode(), raw.Body)
	}
	if h := raw.HTTPResponse.Header; h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		t.Errorf("token response caching headers: %v", h)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "bob@example.com", "user")
	d := e.CreateUser(t, "dora@example.com", "user")
	if _, err := e.Pool.Exec(context.Background(), "UPDATE users SET disabled = true WHERE id = $1", d.ID); err != nil {
		t.Fatal(err)
	}
	const badCredentials = `{"error":"invalid_grant","error_description":"The email or password is incorrect."}`
	tests := []struct {
		name      string
		target    string
		body      io.Reader
		ct        string
		wantError string
		wantBody  string
	}{
		{"wrong password", "/token", form("grant_type", "password", "username", u.Email, "password", "wrong password!"), formCT, "invalid_grant", badCredentials},
		{"unknown email", "/token", form("grant_type", "password", "username", "nobody@example.com", "password", "wrong password!"), formCT, "invalid_grant", badCredentials},
		{"disabled user", "/token", form("grant_type", "password", "username", d.Email, "password", d.Password), formCT, "invalid_grant", badCredentials},
		{"no grant_type", "/token", form("username", u.Email, "password", u.Password), formCT, "invalid_request", ""},
		{"no username", "/token", form("grant_type", "password", "password", u.Password), formCT, "invalid_request", ""},
		{"no password", "/token", form("grant_type", "password", "username", u.Email), formCT, "invalid_request", ""},
		{"empty password", "/token", form("grant_type", "password", "username", u.Email, "password", ""), formCT, "invalid_request", ""},
		{"other grant type", "/token", form("grant_type", "implicit", "code", "x"), formCT, "unsupported_grant_type", ""},
		{"JSON body", "/token", strings.NewReader(`{"grant_type":"password","username":"bob@example.com","password":"x"}`), "application/json", "invalid_request", ""},
		{"no content type", "/token", strings.NewReader("grant_type=password"), "", "invalid_request", ""},
		{"empty body", "/token", strings.NewReader(""), formCT, "invalid_request", ""},
		{"credentials in the query", "/token?password=" + u.Password, form("grant_type", "password", "username", u.Email), formCT, "invalid_request", ""},
		{"repeated parameter", "/token", form("grant_type", "password", "grant_type", "password", "username", u.Email, "password", u.Password), formCT, "invalid_request", ""},
		{"password over the limit", "/token", form("grant_type", "password", "username", u.Email, "password", strings.Repeat("x", 1025)), formCT, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tt.ct != "" {
				h["Content-Type"] = tt.ct
			}
			r := do(t, "POST", e.URL+tt.target, tt.body, h)
			if r.status != 400 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %s %v, want 400 JSON no-store", r.status, r.body, r.header)
			}
			if got := r.json(t)["error"]; got != tt.wantError {
				t.Errorf("error = %v, want %s (body %s)", got, tt.wantError, r.body)
			}
			if tt.wantBody != "" && strings.TrimSpace(r.body) != tt.wantBody {
				t.Errorf("body = %s, want exactly %s", r.body, tt.wantBody)
			}
			if strings.Contains(r.body, u.Password) {
				t.Errorf("the response echoes the password")
			}
		})
	}
}

func TestTokenUpgradesBcryptHashes(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	// A hash as passlib's bcrypt writes it in the seed's Python app.
	h, err := bcrypt.GenerateFromPassword([]byte("imported password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	legacy := "$2b$" + string(h[4:])
	var id int64
	if err := e.Pool.QueryRow(ctx, "INSERT INTO users (email, canonical_email, password_hash) VALUES ('old@example.com', 'old@example.com', $1) RETURNING id", legacy).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if r := login(t, e, "old@example.com", "wrong password"); r.status != 400 {
		t.Fatalf("wrong password against bcrypt = %d", r.status)
	}
	if r := login(t, e, "old@example.com", "imported password"); r.status != 200 {
		t.Fatalf("login with a bcrypt hash = %d %s", r.status, r.body)
	}
	var stored string
	if err := e.Pool.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$v=19$") {
		t.Fatalf("hash after login = %.12s…, want argon2id", stored)
	}
	if r := login(t, e, "OLD@example.com", "imported password"); r.status != 200 {
		t.Fatalf("login after the upgrade = %d %s", r.status, r.body)
	}
}

// When every hashing worker and queue slot is taken, /token answers 503 with
// Retry-After at once instead of queueing without bound.
func TestTokenShedsLoadWhenHashingIsSaturated(t *testing.T) {
	t.Parallel()
	slow := password.Params{Memory: 64 * 1024, Time: 4, Threads: 1, SaltLen: 16, KeyLen: 32}
	// Each login from its own address, so that the per-address in-flight
	// limit (TestThrottleFlood) leaves the pool to saturate.
	e := apitest.New(t, apitest.Options{TrustLoopback: true, HashWorkers: 1, HashQueue: 1, HashParams: &slow})
	u := e.CreateUser(t, "busy@example.com", "user")
	const n = 12
	statuses := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = loginFrom(t, e, fmt.Sprintf("198.51.100.%d", 100+i), u.Email, u.Password)
		})
	}
	close(start)
	wg.Wait()
	var ok, busy int
	for _, r := range statuses {
		switch r.status {
		case 200:
			ok++
		case 503:
			busy++
			if r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("503 without Retry-After or problem body: %v %s", r.header, r.body)
			}
		default:
			t.Errorf("login under load = %d %s", r.status, r.body)
		}
	}
	if ok == 0 || busy == 0 {
		t.Errorf("%d logins succeeded and %d were shed; want some of each", ok, busy)
	}
}

// forge signs a token by hand: header and claims as given.
func forge(t *testing.T, header, claims string, key []byte, sign func(string, []byte) string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	return unsigned + "." + sign(unsigned, key)
}

func TestBearerTokenRefusals(t *testing.T) {
	t.Parallel()
	// HS256, so that the test can forge tokens with the server's own secret.
	e := apitest.New(t, apitest.Options{SigningAlg: token.HS256})
	u := e.CreateUser(t, "carol@example.com", "user")
	valid := e.Token(t, u)

	other := func(cfg token.Config) string {
		t.Helper()
		m, err := token.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		raw, _, err := m.Issue(token.Subject{UserID: u.ID, Email: u.Email, Roles: u.Roles})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	base := token.Config{Secret: e.Secret, Issuer: apitest.Issuer, Audience: apitest.Audience, TTL: 15 * time.Minute}
	otherKey := make([]byte, 32)
	_, _ = rand.Read(otherKey)
	withKey := base
	withKey.Secret = otherKey
	wrongIss := base
	wrongIss.Issuer = "someone-else"
	wrongAud := base
	wrongAud.Audience = "another-api"
	expired := base
	expired.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	early := base
	early.Now = func() time.Time { return time.Now().Add(time.Hour) }

	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
		`{"sub":"`+itoa(u.ID)+`","email":"carol@example.com","roles":["admin"],"iss":"`+apitest.Issuer+`","aud":"`+apitest.Audience+`","iat":`+itoa(time.Now().Unix())+`,"nbf":`+itoa(time.Now().Unix())+`,"exp":`+itoa(time.Now().Add(time.Hour).Unix())+`,"jti":"x"}`)) + "." + parts[2]
	none := forge(t, `{"alg":"none","typ":"at+jwt"}`, `{"sub":"1","roles":["admin"],"iss":"`+apitest.Issuer+`","aud":"`+apitest.Audience+`","exp":9999999999,"nbf":1,"iat":1,"jti":"x"}`, nil,
		func(string, []byte) string { return "" })

	const (
		bare    = `Bearer realm="rolegate"`
		invalid = `Bearer realm="rolegate", error="invalid_token"`
	)
	tests := []struct {
		name       string
		auth       string
		wantHeader string
	}{
		{"no token", "", bare},
		{"another scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("carol:pw")), bare},
		{"empty bearer", "Bearer ", invalid},
		{"bearer without credentials", "Bearer", invalid},
		{"garbage", "Bearer not.a.token", invalid},
		{"alg none", "Bearer " + none, invalid},
		{"another key", "Bearer " + other(withKey), invalid},
		{"expired", "Bearer " + other(expired), invalid},
		{"not yet valid", "Bearer " + other(early), invalid},
		{"wrong issuer", "Bearer " + other(wrongIss), invalid},
		{"wrong audience", "Bearer " + other(wrongAud), invalid},
		{"tampered payload", "Bearer " + tampered, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			r := do(t, "GET", e.URL+"/identify/me", nil, h)
			m := assertProblem(t, r, 401)
			if got := r.header.Get("WWW-Authenticate"); got != tt.wantHeader {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantHeader)
			}
			for _, leak := range []string{"expired", "signature", "malformed", "audience", "issuer", "alg", "not valid yet"} {
				if strings.Contains(strings.ToLower(m["detail"].(string)), leak) {
					t.Errorf("detail %q reveals why the token was refused", m["detail"])
				}
			}
		})
	}

	t.Run("the valid token passes", func(t *testing.T) {
		t.Parallel()
		if r := do(t, "GET", e.URL+"/identify/me", nil, bearer(valid)); r.status != 200 {
			t.Errorf("valid token = %d %s", r.status, r.body)
		}
	})
	t.Run("a valid token without a listed role is 403", func(t *testing.T) {
		t.Parallel()
		sys := e.CreateUser(t, "sys@example.com", "system")
		r := do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"d","title":"t","body":"b"}`),
			map[string]string{"Authorization": "Bearer " + e.Token(t, sys), "Content-Type": "application/json"})
		assertProblem(t, r, 403)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="rolegate", error="insufficient_scope"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A caller without a valid token is refused before the body is read: the
// 401 arrives while the client is still holding back most of an 8 MiB body.
func TestRefusedBeforeTheBodyIsRead(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "nouser@example.com", "system")
	for _, tc := range []struct {
		name string
		auth string
		want int
	}{
		{"no token", "", 401},
		{"no listed role", "Bearer " + e.Token(t, u), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			release := make(chan struct{})
			go func() {
				_, _ = pw.Write([]byte(`{"document_src":"d","title":"`))
				<-release // the rest only after the answer came
				_, _ = pw.Write([]byte(strings.Repeat("x", 8<<20)))
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", e.URL+"/notes", pr)
			req.ContentLength = 8<<20 + 29
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			done := make(chan *http.Response, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
				}
				done <- resp
			}()
			select {
			case resp := <-done:
				if resp != nil {
					resp.Body.Close()
					if resp.StatusCode != tc.want {
						t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
					}
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no answer while the body was held back: the server waits for the body before refusing")
			}
			close(release)
		})
	}
}

func TestChangeMyPassword(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	frank := e.CreateUser(t, "frank@example.com", "user")
	c := e.Login(t, frank) // through /token, with the Go SDK
	change := func(current, next string) *api.ChangeMyPasswordResponse {
		t.Helper()
		r, err := c.ChangeMyPasswordWithResponse(context.Background(), api.ChangeMyPasswordJSONRequestBody{CurrentPassword: current, NewPassword: next})
		must(t, err)
		return r
	}
	const next = "a brand new passphrase"

	r := change("not my password", next)
	p := assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON400}, 400)
	if p.Detail == nil || *p.Detail != "The current password is incorrect." || !slices.Equal(errorFields(p), []string{"body.current_password"}) {
		t.Errorf("wrong current password = %s", r.Body)
	}
	// A new password under the spec's minimum length: the validated client
	// cannot send it, so it goes raw.
	b, _ := json.Marshal(api.PasswordChange{CurrentPassword: frank.Password, NewPassword: "short"})
	m := assertProblem(t, do(t, "POST", e.URL+"/identify/me/password", strings.NewReader(string(b)), jsonHeaders(e.Token(t, frank))), 400)
	if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.new_password" {
		t.Errorf("short new password = %v", m)
	}
	if err := sdkLogin(t, e, frank.Email, frank.Password); err != nil {
		t.Fatalf("refused changes broke the old password: %v", err)
	}

	if r := change(frank.Password, next); r.StatusCode() != 204 || len(r.Body) != 0 {
		t.Fatalf("change = %d %q", r.StatusCode(), r.Body)
	}
	assertInvalidGrant(t, sdkLogin(t, e, frank.Email, frank.Password), "old password after the change")
	if err := sdkLogin(t, e, frank.Email, next); err != nil {
		t.Errorf("new password: %v", err)
	}
	var hash string
	if err := e.Pool.QueryRow(context.Background(), "SELECT password_hash FROM users WHERE id = $1", frank.ID).Scan(&hash); err != nil || !strings.HasPrefix(hash, "$argon2id$") {
		t.Errorf("stored hash %.10s… (err %v), want argon2id", hash, err)
	}
}

// assertOAuthError checks an RFC 6749 section 5.2 body with the given
// status and error code.
func assertOAuthError(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %s (Cache-Control %q) %s, want %d application/json, no-store",
			r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"), r.body, status)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Errorf("error = %v, want %s", m["error"], code)
	}
	return m
}

// New passwords are counted in characters and may not be blank, through
// the API as on the command line.
func TestNewPasswordRules(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	create := func(pw string) response {
		return do(t, "POST", e.URL+"/users", strings.NewReader(`{"email":"p`+base64.RawURLEncoding.EncodeToString([]byte(pw))[:8]+`@example.com","password":"`+pw+`","roles":[]}`), jsonHeaders(tok))
	}
	for _, pw := range []string{strings.Repeat(" ", 12), strings.Repeat("\u3000", 12), strings.Repeat(" ", 13) + `\t`} {
		m := assertProblem(t, create(pw), 400)
		if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.password" {
			t.Errorf("blank password %q: errors = %v", pw, m["errors"])
		}
	}
	if r := create(strings.Repeat("密", 12)); r.status != 201 {
		t.Errorf("twelve CJK characters = %d %s, want 201", r.status, r.body)
	}

	frank := e.CreateUser(t, "frank@example.com", "user")
	m := assertProblem(t, do(t, "POST", e.URL+"/identify/me/password",
		strings.NewReader(`{"current_password":"`+frank.Password+`","new_password":"`+strings.Repeat("\u3000", 12)+`"}`), jsonHeaders(e.Token(t, frank))), 400)
	if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.new_password" {
		t.Errorf("blank new password: errors = %v", m["errors"])
	}
	if err := sdkLogin(t, e, frank.Email, frank.Password); err != nil {
		t.Errorf("the refused change broke the password: %v", err)
	}
}

// A disabled account's token can no longer change the password.
func TestDisabledAccountCannotChangePassword(t *testing.T) {
	t.Parallel()
	e, _, adminTok := adminEnv(t)
	frank := e.CreateUser(t, "frank@example.com", "user")
	tok := e.Token(t, frank)
	if r := do(t, "POST", e.URL+"/users/"+itoa(frank.ID)+"/disable", nil, bearer(adminTok)); r.status != 200 {
		t.Fatalf("disable = %d %s", r.status, r.body)
	}
	assertTokenRefused(t, do(t, "POST", e.URL+"/identify/me/password",
		strings.NewReader(`{"current_password":"`+frank.Password+`","new_password":"a brand new passphrase"}`), jsonHeaders(tok)))
}
