package resource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/resource"
	"github.com/rolegate/rolegate/token"
)

const (
	issuer   = "https://rolegate.test"
	audience = "reports"
)

// clock is a movable clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeRolegate serves metadata and a JWKS the test controls, and counts
// every request by path.
type fakeRolegate struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []any  // the JWKS's members
	jwksURI      string // "" means the server's own /jwks
	cacheControl string
	hits         map[string]int
}

func newFakeRolegate(t *testing.T, keys ...token.Key) *fakeRolegate {
	t.Helper()
	f := &fakeRolegate{hits: map[string]int{}, cacheControl: "public, max-age=300"}
	f.publish(t, keys...)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.hits[r.URL.Path]++
		switch r.URL.Path {
		case resource.WellKnownPath:
			uri := f.jwksURI
			if uri == "" {
				uri = "http://" + r.Host + "/jwks"
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": uri, "token_endpoint": "http://" + r.Host + "/token"})
		case "/jwks":
			w.Header().Set("Cache-Control", f.cacheControl)
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": f.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// publish makes keys the JWKS's keys.
func (f *fakeRolegate) publish(t *testing.T, keys ...token.Key) {
	t.Helper()
	members := []any{}
	for _, k := range keys {
		j, err := k.PublicJWK()
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, j)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = members
}

func (f *fakeRolegate) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *fakeRolegate) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.hits {
		n += c
	}
	return n
}

// syncBuffer collects log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustKey(t *testing.T, alg string) token.Key {
	t.Helper()
	k, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue returns a token k signs, as rolegate would issue it at c's time,
// with iss and aud changed by opts.
func issue(t *testing.T, c *clock, k token.Key, roles []string, opts ...func(*token.Config)) string {
	t.Helper()
	cfg := token.Config{Keys: &token.KeySet{Signing: k}, Issuer: issuer, Audience: audience, TTL: 15 * time.Minute, Now: c.Now}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := token.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := m.Issue(token.Subject{UserID: 7, Email: "ada@example.com", Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// config is the kit's configuration against f, on c's clock.
func config(f *fakeRolegate, c *clock, logs io.Writer) resource.Config {
	if logs == nil {
		logs = io.Discard
	}
	return resource.Config{
		RolegateURL: f.URL,
		Audience:    audience,
		Spec:        []byte(testSpec),
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         c.Now,
		// The fake serves no revocation feed: these tests are about keys
		// (feed_test.go follows a real rolegate's).
		IgnoreRevocations: true,
	}
}

func newVerifier(t *testing.T, cfg resource.Config) *resource.Verifier {
	t.Helper()
	v, err := resource.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Tokens of the published keys pass, both algorithms; iss and aud are
// pinned, and a foreign key claiming a published kid is refused.
func TestVerifierPinsKeysIssuerAndAudience(t *testing.T) {
	t.Parallel()
	c := newClock()
	ed, ec := mustKey(t, token.EdDSA), mustKey(t, token.ES256)
	f := newFakeRolegate(t, ed, ec)
	v := newVerifier(t, config(f, c, nil))
	for _, k := range []token.Key{ed, ec} {
		claims, err := v.Verify(issue(t, c, k, []string{"user"}))
		if err != nil || claims.UserID != 7 || claims.Roles[0] != "user" {
			t.Errorf("%s token: %v, %v", k.Alg, claims, err)
		}
	}
	foreign := mustKey(t, token.EdDSA)
	foreign.ID = ed.ID
	refused := map[string]string{
		"another issuer":                    issue(t, c, ed, nil, func(c *token.Config) { c.Issuer = "https://evil.test" }),
		"another audience":                  issue(t, c, ed, nil, func(c *token.Config) { c.Audience = "rolegate" }),
		"a foreign key with a known kid":    issue(t, c, foreign, nil),
		"ES256 signature under EdDSA's kid": issue(t, c, token.Key{ID: ed.ID, Alg: token.ES256, Private: ec.Private, Public: ec.Public}, nil),
	}
	expired := issue(t, c, ed, nil)
	for name, raw := range refused {
		if _, err := v.Verify(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c.Advance(16 * time.Minute)
	if _, err := v.Verify(expired); err == nil {
		t.Error("an expired token: accepted")
	}
}

// A token of an unknown kid makes the verifier fetch the JWKS again, at
// most once per RefetchInterval however many such tokens come.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	c := newClock()
	old, next := mustKey(t, token.EdDSA), mustKey(t, token.EdDSA)
	f := newFakeRolegate(t, old)
	cfg := config(f, c, nil)
	cfg.RefetchInterval = 10 * time.Second
	v := newVerifier(t, cfg)
	if n := f.count("/jwks"); n != 1 {
		t.Fatalf("%d JWKS fetches at start, want 1", n)
	}
	// rolegate has not published next yet: one fetch, then nothing more
	// for a flood of unknown kids.
	early := issue(t, c, next, nil)
	for range 50 {
		if _, err := v.Verify(early); err == nil {
			t.Fatal("a token of an unpublished key: accepted")
		}
		if _, err := v.Verify(issue(t, c, mustKey(t, token.EdDSA), nil)); err == nil {
			t.Fatal("a token of a random key: accepted")
		}
	}
	if n := f.count("/jwks"); n != 2 {
		t.Fatalf("%d JWKS fetches after many unknown kids, want 2 (one refetch)", n)
	}
	// Published now, but the interval has not passed: still refused, no fetch.
	f.publish(t, old, next)
	c.Advance(9 * time.Second)
	if _, err := v.Verify(early); err == nil {
		t.Fatal("the new key's token passed before a refetch was allowed")
	}
	if n := f.count("/jwks"); n != 2 {
		t.Fatalf("%d JWKS fetches within the interval, want 2", n)
	}
	// Once it has passed, the next unknown kid fetches and verifies.
	c.Advance(time.Second)
	if _, err := v.Verify(issue(t, c, next, nil)); err != nil {
		t.Fatalf("the new key's token after the interval: %v", err)
	}
	if n := f.count("/jwks"); n != 3 {
		t.Fatalf("%d JWKS fetches, want 3", n)
	}
	// Known kids, good or bad, never fetch.
	for range 10 {
		_, _ = v.Verify(issue(t, c, old, nil))
		_, _ = v.Verify(issue(t, c, next, nil, func(c *token.Config) { c.Audience = "other" }))
		_, _ = v.Verify("not a token")
	}
	c.Advance(time.Minute)
	_, _ = v.Verify(issue(t, c, old, nil, func(c *token.Config) { c.Issuer = "other" }))
	if n := f.count("/jwks"); n != 3 {
		t.Fatalf("%d JWKS fetches after tokens of known kids, want 3", n)
	}
}

// The keys are fetched again in the background: a key published ahead
// verifies before any token names it, and a withdrawn key no longer does.
func TestKeysRefreshInTheBackground(t *testing.T) {
	t.Parallel()
	c := newClock()
	old, next := mustKey(t, token.ES256), mustKey(t, token.ES256)
	f := newFakeRolegate(t, old)
	cfg := config(f, c, nil)
	cfg.RefetchInterval = time.Hour
	cfg.RefreshInterval = 20 * time.Millisecond
	v := newVerifier(t, cfg)
	// Use up the refetch an unknown kid may cause.
	_, _ = v.Verify(issue(t, c, mustKey(t, token.ES256), nil))
	f.publish(t, old, next)
	waitFor(t, func() bool { _, err := v.Verify(issue(t, c, next, nil)); return err == nil })
	f.publish(t, next)
	waitFor(t, func() bool { _, err := v.Verify(issue(t, c, old, nil)); return err != nil })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("not within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A token's header may name URLs (jku, x5u) or carry a key (jwk): none is
// ever fetched or used, only the kid looked up among the keys already
// fetched.
func TestTokenHeaderURLsAreNeverFetched(t *testing.T) {
	t.Parallel()
	c := newClock()
	k := mustKey(t, token.EdDSA)
	f := newFakeRolegate(t, k)
	v := newVerifier(t, config(f, c, nil))
	attacker := mustKey(t, token.EdDSA)
	attackerJWK, _ := attacker.PublicJWK()
	now := c.Now().Unix()
	claims := jwt.MapClaims{"sub": "1", "email": "eve@example.com", "roles": []string{"admin"}, "iss": issuer, "aud": audience,
		"iat": now, "nbf": now, "exp": now + 600, "jti": "j"}
	for _, kid := range []string{attacker.ID, k.ID} {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["typ"] = "at+jwt"
		tok.Header["kid"] = kid
		tok.Header["jku"] = f.URL + "/evil/jwks"
		tok.Header["x5u"] = f.URL + "/evil/x5u"
		tok.Header["jwk"] = attackerJWK
		raw, err := tok.SignedString(attacker.Private)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(raw); err == nil {
			t.Errorf("kid %s: a token signed by the key its header carries was accepted", kid)
		}
	}
	if n := f.count("/evil/jwks") + f.count("/evil/x5u"); n != 0 {
		t.Errorf("%d requests to URLs a token named", n)
	}
}

// Keys the kit cannot use are skipped with a log line; a JWKS without any
// usable key refuses to start.
func TestUnusableKeysAreSkipped(t *testing.T) {
	t.Parallel()
	c := newClock()
	good, twin := mustKey(t, token.EdDSA), mustKey(t, token.EdDSA)
	twinJWK, _ := twin.PublicJWK()
	twin2 := mustKey(t, token.EdDSA)
	twin2JWK, _ := twin2.PublicJWK()
	twin2JWK.Kid = twinJWK.Kid
	withD, _ := mustKey(t, token.EdDSA).PublicJWK()
	withD.D = &withD.X
	enc, _ := mustKey(t, token.ES256).PublicJWK()
	enc.Use = "enc"
	noUse, _ := mustKey(t, token.EdDSA).PublicJWK()
	noUse.Use = ""
	idKey := mustKey(t, token.RS256) // an id-token key, which rolegate's JWKS holds too
	idJWK, _ := idKey.PublicJWK()
	unusable := []any{
		idJWK,
		map[string]string{"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": "AQAB", "e": "AQAB"},
		map[string]string{"kty": "oct", "kid": "oct", "alg": "HS256", "use": "sig", "k": "c2VjcmV0"},
		map[string]any{"kty": 1},
		withD, enc, noUse, twinJWK, twin2JWK,
	}
	f := newFakeRolegate(t, good)
	f.keys = append(f.keys, unusable...)
	logs := &syncBuffer{}
	v := newVerifier(t, config(f, c, logs))
	if _, err := v.Verify(issue(t, c, good, nil)); err != nil {
		t.Errorf("the good key's token: %v", err)
	}
	for _, k := range []token.Key{twin, twin2} {
		if _, err := v.Verify(issue(t, c, k, nil)); err == nil {
			t.Errorf("a token of a kid two keys share: accepted")
		}
	}
	// An access token signed with the id-token key, as rolegate never
	// signs one, is refused.
	forged := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": "7", "roles": []string{}, "jti": "j",
		"iat": c.Now().Unix(), "nbf": c.Now().Unix(), "exp": c.Now().Add(time.Minute).Unix(),
	})
	forged.Header["typ"], forged.Header["kid"] = "at+jwt", idKey.ID
	if raw, err := forged.SignedString(idKey.Private); err != nil {
		t.Fatal(err)
	} else if _, err := v.Verify(raw); err == nil {
		t.Error("an RS256 access token of the id-token key: accepted")
	}
	if n := strings.Count(logs.String(), "skipped"); n < len(unusable) {
		t.Errorf("%d keys skipped in the log, want %d:\n%s", n, len(unusable), logs)
	}

	none := newFakeRolegate(t)
	none.keys = unusable
	if _, err := resource.NewVerifier(t.Context(), config(none, c, nil)); err == nil || !strings.Contains(err.Error(), "no EdDSA or ES256 key") {
		t.Errorf("NewVerifier on a JWKS of no usable key = %v", err)
	}
}

// Start-up fails closed: on a spec whose access is not all declared before
// any request to rolegate, and on metadata or keys it cannot trust.
func TestNewFailsClosed(t *testing.T) {
	t.Parallel()
	c := newClock()
	k := mustKey(t, token.EdDSA)
	next := http.NotFoundHandler()

	f := newFakeRolegate(t, k)
	cfg := config(f, c, nil)
	cfg.Spec = []byte(strings.Replace(testSpec, "      x-roles: [admin]\n", "", 1))
	if _, err := resource.New(t.Context(), cfg, next); err == nil || !strings.Contains(err.Error(), "no x-roles") {
		t.Errorf("New with an operation without x-roles = %v", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("%d requests to rolegate for a spec that is refused", n)
	}
	// An x-org operation needs the memberships feed, hence a client.
	scoped := config(f, c, nil)
	scoped.Spec = []byte(testSpec + `  /orgs/{orgId}/things:
    get:
      operationId: listOrgThings
      x-org: orgId
      x-roles: ["org:viewer"]
      parameters:
        - {name: orgId, in: path, required: true, schema: {type: integer}}
      responses:
        "200": {description: ok}
        "401": {description: no token}
        "403": {description: no role}
        "404": {description: no member}
`)
	if _, err := resource.New(t.Context(), scoped, next); err == nil || !strings.Contains(err.Error(), "memberships feed") {
		t.Errorf("New with an x-org operation and no client = %v", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("%d requests to rolegate for a spec that is refused", n)
	}

	elsewhere := newFakeRolegate(t, k)
	for name, uri := range map[string]string{
		"another origin": elsewhere.URL + "/jwks",
		"another port":   "http://127.0.0.1:1/jwks",
		"another scheme": strings.Replace(f.URL, "http:", "https:", 1) + "/jwks",
		"relative":       "/jwks",
		"credentials":    strings.Replace(f.URL, "http://", "http://u:p@", 1) + "/jwks",
		"none":           " ",
	} {
		f.mu.Lock()
		f.jwksURI = uri
		f.mu.Unlock()
		if _, err := resource.New(t.Context(), config(f, c, nil), next); err == nil {
			t.Errorf("%s jwks_uri %q: accepted", name, uri)
		}
	}
	if n := elsewhere.total(); n != 0 {
		t.Errorf("%d requests to a jwks_uri on another origin", n)
	}
	f.mu.Lock()
	f.jwksURI = ""
	f.mu.Unlock()

	for _, u := range []string{"", "rolegate", "ftp://x", "http://", "http://u:pw@127.0.0.1", f.URL + "?x=1"} {
		cfg := config(f, c, nil)
		cfg.RolegateURL = u
		if _, err := resource.New(t.Context(), cfg, next); err == nil {
			t.Errorf("RolegateURL %q: accepted", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("the error quotes the URL's password: %v", err)
		}
	}
	noAudience := config(f, c, nil)
	noAudience.Audience = ""
	if _, err := resource.New(t.Context(), noAudience, next); err == nil {
		t.Error("no audience: accepted")
	}

	// A redirect is not followed, and a JWKS over its bound is refused.
	redirect := httptest.NewServer(http.RedirectHandler(f.URL+resource.WellKnownPath, http.StatusFound))
	t.Cleanup(redirect.Close)
	cfg = config(f, c, nil)
	cfg.RolegateURL = redirect.URL
	if _, err := resource.New(t.Context(), cfg, next); err == nil {
		t.Error("metadata behind a redirect: accepted")
	}
	big := newFakeRolegate(t, k)
	big.keys = append(big.keys, strings.Repeat("x", 300<<10))
	if _, err := resource.New(t.Context(), config(big, c, nil), next); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("a JWKS of 300 KiB = %v", err)
	}
}

// testSpec admits users to GET /things and admins to DELETE.
const testSpec = `openapi: 3.0.3
info: {title: things, version: "1"}
security: [{bearer: []}]
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
paths:
  /health:
    get:
      operationId: health
      security: []
      responses:
        "200": {description: ok}
  /things:
    get:
      operationId: listThings
      x-roles: [user]
      responses:
        "200": {description: ok}
        "401": {description: no token}
        "403": {description: no role}
    delete:
      operationId: deleteThings
      x-roles: [admin]
      responses:
        "204": {description: gone}
        "401": {description: no token}
        "403": {description: no role}
`

// The handler New returns answers as rolegate's gate does.
func TestNewEnforcesTheSpec(t *testing.T) {
	t.Parallel()
	c := newClock()
	k := mustKey(t, token.EdDSA)
	f := newFakeRolegate(t, k)
	h, err := resource.New(t.Context(), config(f, c, nil), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" && access.Caller(r.Context()) == nil {
			t.Error("a secured operation reached the handler without a caller")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	if err != nil {
		t.Fatal(err)
	}
	user := issue(t, c, k, []string{"user"})
	tests := []struct {
		method, path, token string
		status              int
		challenge           string
	}{
		{"GET", "/health", "", 204, ""},
		{"GET", "/things", "", 401, `Bearer realm="rolegate"`},
		{"GET", "/things", "garbage", 401, `Bearer realm="rolegate", error="invalid_token"`},
		{"GET", "/things", user, 204, ""},
		{"DELETE", "/things", user, 403, `Bearer realm="rolegate", error="insufficient_scope"`},
		{"DELETE", "/things", issue(t, c, k, []string{"admin"}), 204, ""},
		{"GET", "/nowhere", user, 404, ""},
		{"PUT", "/things", user, 405, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequestWithContext(context.Background(), tt.method, tt.path, nil)
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status || w.Header().Get("WWW-Authenticate") != tt.challenge {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, w.Code, w.Header().Get("WWW-Authenticate"), tt.status, tt.challenge)
		}
		if w.Code >= 400 && (w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), `"request_id"`)) {
			t.Errorf("%s %s: %s %s", tt.method, tt.path, w.Header().Get("Content-Type"), w.Body)
		}
	}
}
