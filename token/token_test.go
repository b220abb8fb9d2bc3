package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	otherSecret = []byte("fedcba9876543210fedcba9876543210") // 32 bytes
	t0          = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

const (
	testIssuer   = "https://rolegate.example"
	testAudience = "rolegate-api"
	testTTL      = 15 * time.Minute
	testLeeway   = 5 * time.Second
)

// clock is an injectable, concurrency-safe, allocation-free clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func testConfig(clk *clock) Config {
	return Config{
		Secret:   testSecret,
		Issuer:   testIssuer,
		Audience: testAudience,
		TTL:      testTTL,
		Leeway:   testLeeway,
		Now:      clk.Now,
	}
}

func newTestManager(t testing.TB, mod func(*Config)) (*Manager, *clock) {
	t.Helper()
	clk := newClock(t0)
	cfg := testConfig(clk)
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, clk
}

func issue(t testing.TB, m *Manager, userID int64, email string, roles []string) (string, time.Time) {
	t.Helper()
	raw, exp, err := m.Issue(Subject{UserID: userID, Email: email, Roles: roles})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return raw, exp
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSegment(t testing.TB, seg string) map[string]json.RawMessage {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal segment %s: %v", b, err)
	}
	return m
}

// goodClaims is a claims set that verifies at t0 with the test config.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   "42",
		"email": "ada@example.com",
		"roles": []string{"admin"},
		"iat":   t0.Unix(),
		"nbf":   t0.Unix(),
		"exp":   t0.Add(testTTL).Unix(),
		"iss":   testIssuer,
		"aud":   testAudience,
		"jti":   "dGVzdC1qdGktMDAwMDAwMA",
	}
}

// sign signs claims with method and key under a header {"alg": method,
// "typ": "at+jwt"} modified by hdr (a nil value deletes the entry).
func sign(t testing.TB, method jwt.SigningMethod, key any, hdr map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header = map[string]any{"alg": method.Alg(), "typ": "at+jwt"}
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}
	return s
}

// with returns goodClaims modified by kv pairs (a nil value deletes the claim).
func with(kv ...any) jwt.MapClaims {
	c := goodClaims()
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = kv[i+1]
		}
	}
	return c
}

func hs256(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, testSecret, nil, c)
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	m, clk := newTestManager(t, nil)
	clk.Set(t0.Add(300 * time.Millisecond)) // iat is truncated to the second
	raw, exp := issue(t, m, 42, "ada@example.com", []string{"admin", "viewer"})

	if want := t0.Add(testTTL); !exp.Equal(want) {
		t.Errorf("Issue expiresAt = %v, want %v", exp, want)
	}

	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	hdr := decodeSegment(t, parts[0])
	if got := string(hdr["alg"]); got != `"HS256"` {
		t.Errorf("header alg = %s, want \"HS256\"", got)
	}
	if got := string(hdr["typ"]); got != `"at+jwt"` {
		t.Errorf("header typ = %s, want \"at+jwt\"", got)
	}
	if len(hdr) != 2 {
		t.Errorf("header has extra fields: %v", hdr)
	}

	pl := decodeSegment(t, parts[1])
	wantPayload := map[string]string{
		"sub":   `"42"`,
		"email": `"ada@example.com"`,
		"roles": `["admin","viewer"]`,
		"iat":   fmt.Sprint(t0.Unix()),
		"nbf":   fmt.Sprint(t0.Unix()),
		"exp":   fmt.Sprint(t0.Add(testTTL).Unix()),
		"iss":   `"` + testIssuer + `"`,
	}
	for k, want := range wantPayload {
		if got := string(pl[k]); got != want {
			t.Errorf("payload %s = %s, want %s", k, got, want)
		}
	}
	var aud jwt.ClaimStrings
	if err := json.Unmarshal(pl["aud"], &aud); err != nil || len(aud) != 1 || aud[0] != testAudience {
		t.Errorf("payload aud = %s, want %q (err %v)", pl["aud"], testAudience, err)
	}
	var jti string
	if err := json.Unmarshal(pl["jti"], &jti); err != nil {
		t.Fatalf("jti: %v", err)
	}
	if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
		t.Errorf("jti %q is not 128 bits of base64url (err %v)", jti, err)
	}

	c, err := m.Verify(raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.UserID != 42 || c.Email != "ada@example.com" || c.ID != jti {
		t.Errorf("claims = %+v", c)
	}
	if fmt.Sprint(c.Roles) != "[admin viewer]" {
		t.Errorf("roles = %q", c.Roles)
	}
	if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(testTTL)) {
		t.Errorf("iat/exp = %v/%v, want %v/%v", c.IssuedAt, c.ExpiresAt, t0, t0.Add(testTTL))
	}

	// A fresh token gets a fresh jti.
	raw2, _ := issue(t, m, 42, "ada@example.com", []string{"admin", "viewer"})
	c2, err := m.Verify(raw2)
	if err != nil {
		t.Fatalf("Verify second token: %v", err)
	}
	if c2.ID == c.ID {
		t.Errorf("two tokens share jti %q", c.ID)
	}
}

func TestIssueSessionAndVersion(t *testing.T) {
	m, _ := newTestManager(t, nil)
	raw, _, err := m.Issue(Subject{UserID: 7, Email: "s@example.com", SessionID: "0b6c0a8e-2f4e-4c53-9f0a-7d1b2c3d4e5f", Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Verify(raw)
	if err != nil || c.SessionID != "0b6c0a8e-2f4e-4c53-9f0a-7d1b2c3d4e5f" || c.Version != 3 {
		t.Fatalf("Verify = %+v, %v; want sid and ver back", c, err)
	}
	pl := decodeSegment(t, strings.Split(raw, ".")[1])
	if string(pl["exp"]) == "" || pl["exp"][0] == '"' || string(pl["ver"]) != "3" {
		t.Errorf("payload exp %s ver %s: want JSON numbers", pl["exp"], pl["ver"])
	}
	// A token of no session has neither claim.
	raw, _, _ = m.Issue(Subject{UserID: 7})
	if pl := decodeSegment(t, strings.Split(raw, ".")[1]); pl["sid"] != nil || pl["ver"] != nil {
		t.Errorf("payload %v: want no sid or ver", pl)
	}
}

// TestIssueAssurance: amr, acr (from amr) and auth_time, and
// email_verified, go into a person's token and come back from Verify; a
// token without them meets no acr.
func TestIssueAssurance(t *testing.T) {
	m, _ := newTestManager(t, nil)
	at := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		amr     []string
		wantACR string
	}{
		{"password", []string{"pwd"}, ACRPassword},
		{"password and code", []string{"pwd", "otp", "mfa"}, ACRMFA},
		{"a passkey alone", []string{"hwk", "user"}, ACRPassword},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Subject{UserID: 7, Email: "s@example.com", EmailVerified: true, AMR: tt.amr}
			if tt.amr != nil {
				s.AuthTime = at
			}
			raw, _, err := m.Issue(s)
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.Verify(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.AMR, tt.amr) || c.ACR != tt.wantACR || !c.EmailVerified {
				t.Errorf("Verify = amr %v acr %q verified %v; want %v %q true", c.AMR, c.ACR, c.EmailVerified, tt.amr, tt.wantACR)
			}
			if tt.amr != nil && !c.AuthTime.Equal(at) || tt.amr == nil && !c.AuthTime.IsZero() {
				t.Errorf("auth_time = %v", c.AuthTime)
			}
			pl := decodeSegment(t, strings.Split(raw, ".")[1])
			if tt.amr != nil && string(pl["auth_time"]) != "1800000000" {
				t.Errorf("payload auth_time %s: want a JSON number", pl["auth_time"])
			}
		})
	}
}

func TestIssueNoRoles(t *testing.T) {
	m, _ := newTestManager(t, nil)
	for _, roles := range [][]string{nil, {}} {
		raw, _ := issue(t, m, 7, "", roles)
		pl := decodeSegment(t, strings.Split(raw, ".")[1])
		if got := string(pl["roles"]); got != "[]" {
			t.Errorf("roles %#v encoded as %s, want []", roles, got)
		}
		c, err := m.Verify(raw)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Roles == nil || len(c.Roles) != 0 {
			t.Errorf("Roles = %#v, want empty non-nil", c.Roles)
		}
	}
}

func TestIssueRejects(t *testing.T) {
	m, _ := newTestManager(t, nil)
	for _, id := range []int64{0, -1} {
		if _, _, err := m.Issue(Subject{UserID: id, Email: "x@example.com"}); err == nil {
			t.Errorf("Issue(%d) succeeded", id)
		}
	}
	if _, _, err := m.Issue(Subject{UserID: 1, Email: strings.Repeat("x", maxTokenLen)}); err == nil {
		t.Error("Issue of an over-long token succeeded")
	}
}

func TestVerifyAccepts(t *testing.T) {
	m, _ := newTestManager(t, nil)
	issued, _ := issue(t, m, 42, "ada@example.com", []string{"admin"})
	tests := []struct {
		name string
		raw  string
	}{
		{"issued", issued},
		{"typ uppercase", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "AT+JWT"}, goodClaims())},
		{"typ media type", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "application/at+jwt"}, goodClaims())},
		{"aud array containing ours", hs256(t, with("aud", []string{"other", testAudience}))},
		{"nbf in the future within leeway", hs256(t, with("nbf", t0.Add(testLeeway-time.Second).Unix()))},
		{"iat in the future within leeway", hs256(t, with("iat", t0.Add(testLeeway-time.Second).Unix()))},
		{"roles empty", hs256(t, with("roles", []string{}))},
		{"email missing", hs256(t, with("email", nil))},
		{"sub max int64", hs256(t, with("sub", "9223372036854775807"))},
		{"unknown kid header ignored", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"kid": "k1"}, goodClaims())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Verify(tt.raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Roles == nil {
				t.Error("Roles is nil")
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	m, _ := newTestManager(t, nil)
	issued, _ := issue(t, m, 42, "ada@example.com", []string{"viewer"})
	parts := strings.Split(issued, ".")

	// Tampered: same header and signature, payload says admin.
	pl := decodeSegment(t, parts[1])
	pl["roles"] = json.RawMessage(`["admin"]`)
	tampered := parts[0] + "." + b64JSON(t, pl) + "." + parts[2]
	// Tampered header: typ changed, payload and signature kept.
	tamperedHeader := b64JSON(t, map[string]string{"alg": "HS256", "typ": "AT+JWT"}) + "." + parts[1] + "." + parts[2]

	noneHeader := b64JSON(t, map[string]string{"alg": "none", "typ": "at+jwt"})
	goodPayload := b64JSON(t, goodClaims())

	big := hs256(t, with("pad", strings.Repeat("x", maxTokenLen)))

	tests := []struct {
		name string
		raw  string
	}{
		// RFC 7519 section 2: a NumericDate is a JSON number, not a string.
		{"exp a string", hs256(t, with("exp", strconv.FormatInt(t0.Add(testTTL).Unix(), 10)))},
		{"nbf a string", hs256(t, with("nbf", strconv.FormatInt(t0.Unix(), 10)))},
		{"iat a string", hs256(t, with("iat", strconv.FormatInt(t0.Unix(), 10)))},
		{"exp a boolean", hs256(t, with("exp", true))},
		{"ver a string", hs256(t, with("ver", "3"))},
		{"sid a number", hs256(t, with("sid", 3))},
		{"alg none", noneHeader + "." + goodPayload + "."},
		{"alg none with HS256 signature kept", noneHeader + "." + parts[1] + "." + parts[2]},
		{"alg None", b64JSON(t, map[string]string{"alg": "None", "typ": "at+jwt"}) + "." + goodPayload + "."},
		{"alg missing", b64JSON(t, map[string]string{"typ": "at+jwt"}) + "." + parts[1] + "." + parts[2]},
		{"other 32-byte key", sign(t, jwt.SigningMethodHS256, otherSecret, nil, goodClaims())},
		{"HS384 right key", sign(t, jwt.SigningMethodHS384, testSecret, nil, goodClaims())},
		{"HS512 right key", sign(t, jwt.SigningMethodHS512, testSecret, nil, goodClaims())},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, nil, goodClaims())},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, nil, goodClaims())},
		{"expired beyond leeway", hs256(t, with("iat", t0.Add(-time.Hour).Unix(), "nbf", t0.Add(-time.Hour).Unix(), "exp", t0.Add(-testLeeway-time.Second).Unix()))},
		{"expired exactly at leeway", hs256(t, with("iat", t0.Add(-time.Hour).Unix(), "nbf", t0.Add(-time.Hour).Unix(), "exp", t0.Add(-testLeeway).Unix()))},
		{"nbf in the future beyond leeway", hs256(t, with("nbf", t0.Add(testLeeway+time.Second).Unix()))},
		{"iat in the future beyond leeway", hs256(t, with("iat", t0.Add(testLeeway+time.Second).Unix()))},
		{"exp missing", hs256(t, with("exp", nil))},
		{"nbf missing", hs256(t, with("nbf", nil))},
		{"iat missing", hs256(t, with("iat", nil))},
		{"exp not a number", hs256(t, with("exp", "tomorrow"))},
		{"wrong iss", hs256(t, with("iss", "https://evil.example"))},
		{"iss missing", hs256(t, with("iss", nil))},
		{"wrong aud", hs256(t, with("aud", "other-api"))},
		{"aud array without ours", hs256(t, with("aud", []string{"a", "b"}))},
		{"aud missing", hs256(t, with("aud", nil))},
		{"typ missing", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": nil}, goodClaims())},
		{"typ JWT", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "JWT"}, goodClaims())},
		{"typ not a string", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": 1}, goodClaims())},
		{"crit header", sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"crit": []string{"exp"}}, goodClaims())},
		{"tampered payload", tampered},
		{"tampered header", tamperedHeader},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"padded signature", issued + "="},
		{"garbage", "garbage"},
		{"garbage with dots", "a.b.c"},
		{"only dots", ".."},
		{"four segments", issued + ".x"},
		{"empty", ""},
		{"over 8 KiB", big},
		{"over 8 KiB of junk", strings.Repeat("a", maxTokenLen+1)},
		{"sub not a number", hs256(t, with("sub", "ada"))},
		{"sub empty", hs256(t, with("sub", ""))},
		{"sub missing", hs256(t, with("sub", nil))},
		{"sub zero", hs256(t, with("sub", "0"))},
		{"sub negative", hs256(t, with("sub", "-42"))},
		{"sub with plus", hs256(t, with("sub", "+42"))},
		{"sub with leading zero", hs256(t, with("sub", "042"))},
		{"sub overflows int64", hs256(t, with("sub", "9223372036854775808"))},
		{"sub JSON number", hs256(t, with("sub", 42))},
		{"roles missing", hs256(t, with("roles", nil))},
		{"roles null", hs256(t, with("roles", json.RawMessage("null")))},
		{"roles a string", hs256(t, with("roles", "admin"))},
		{"roles with a number", hs256(t, with("roles", []any{"admin", 1}))},
		{"jti missing", hs256(t, with("jti", nil))},
		{"jti empty", hs256(t, with("jti", ""))},
		{"email not a string", hs256(t, with("email", 5))},
	}
	if len(big) <= maxTokenLen {
		t.Fatalf("big token is only %d bytes", len(big))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 { // a second try must not be served from a cache
				c, err := m.Verify(tt.raw)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("try %d: Verify = %+v, %v; want ErrInvalid", i, c, err)
				}
				if c != nil {
					t.Fatalf("try %d: Verify returned claims with an error", i)
				}
				if tt.raw != "" && len(tt.raw) > 20 && strings.Contains(err.Error(), tt.raw[len(tt.raw)-20:]) {
					t.Errorf("error text contains the token: %v", err)
				}
				if strings.Contains(err.Error(), "tomorrow") {
					t.Errorf("error text quotes a claim: %v", err)
				}
				if strings.Contains(err.Error(), string(testSecret)) {
					t.Errorf("error text contains the secret: %v", err)
				}
			}
			t.Logf("error: %v", err0(m.Verify(tt.raw)))
		})
	}
	if n := m.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after only failures, want 0", n)
	}
}

func err0(_ *Claims, err error) error { return err }

func TestVerifyTokenJustUnderLimit(t *testing.T) {
	m, _ := newTestManager(t, nil)
	// Grow a padding claim until the token is as long as allowed.
	pad := 5000
	var raw string
	for {
		next := hs256(t, with("pad", strings.Repeat("x", pad)))
		if len(next) > maxTokenLen {
			break
		}
		raw = next
		pad++
	}
	if raw == "" || len(raw) > maxTokenLen || len(raw) < maxTokenLen-4 {
		t.Fatalf("could not build a token at the limit (len %d)", len(raw))
	}
	if _, err := m.Verify(raw); err != nil {
		t.Errorf("Verify of a %d-byte token: %v", len(raw), err)
	}
}

func TestLeeway(t *testing.T) {
	for _, cacheSize := range []int{0, -1} {
		t.Run(fmt.Sprintf("cache %d", cacheSize), func(t *testing.T) {
			const leeway = 10 * time.Second
			m, clk := newTestManager(t, func(c *Config) {
				c.Leeway = leeway
				c.CacheSize = cacheSize
			})
			raw, exp := issue(t, m, 1, "a@example.com", nil)
			tests := []struct {
				at   time.Time
				pass bool
			}{
				{exp.Add(-time.Second), true},
				{exp, true},
				{exp.Add(leeway - time.Second), true},
				{exp.Add(leeway - time.Nanosecond), true},
				{exp.Add(leeway), false},
				{exp.Add(leeway + time.Second), false},
			}
			for _, tt := range tests {
				clk.Set(tt.at)
				_, err := m.Verify(raw)
				if tt.pass && err != nil {
					t.Errorf("at exp%+v: Verify: %v", tt.at.Sub(exp), err)
				}
				if !tt.pass && !errors.Is(err, ErrInvalid) {
					t.Errorf("at exp%+v: Verify = %v, want ErrInvalid", tt.at.Sub(exp), err)
				}
			}
		})
	}
}

func TestCacheHit(t *testing.T) {
	m, _ := newTestManager(t, nil)
	raw, _ := issue(t, m, 42, "ada@example.com", []string{"admin"})
	notYetSeen, _ := issue(t, m, 43, "bob@example.com", nil)

	c1, err := m.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.sigChecks.Load(); n != 1 {
		t.Fatalf("signature checks after first Verify = %d, want 1", n)
	}
	for range 3 {
		c2, err := m.Verify(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c2 != c1 {
			t.Error("cache hit returned different claims")
		}
	}
	if n := m.sigChecks.Load(); n != 1 {
		t.Errorf("signature checks after cached Verifies = %d, want 1", n)
	}
	if n := m.cache.len(); n != 1 {
		t.Errorf("cache len = %d, want 1", n)
	}

	// Swap the key: the cached token still passes (no signature work),
	// while a token signed with the old key that was never verified fails.
	m.secret = append([]byte(nil), otherSecret...)
	if _, err := m.Verify(raw); err != nil {
		t.Errorf("cached token after key change: %v", err)
	}
	if _, err := m.Verify(notYetSeen); !errors.Is(err, ErrInvalid) {
		t.Errorf("uncached old-key token after key change: %v, want ErrInvalid", err)
	}
}

func TestCacheExpiry(t *testing.T) {
	m, clk := newTestManager(t, nil)
	raw, exp := issue(t, m, 42, "ada@example.com", nil)
	if _, err := m.Verify(raw); err != nil {
		t.Fatal(err)
	}
	clk.Set(exp.Add(-time.Nanosecond))
	if _, err := m.Verify(raw); err != nil {
		t.Fatal(err)
	}
	if n := m.sigChecks.Load(); n != 1 {
		t.Fatalf("signature checks = %d, want 1 (served from cache until exp)", n)
	}

	// At exp the entry is no longer served: full verification runs again
	// (and passes thanks to the leeway), and nothing is re-cached.
	clk.Set(exp)
	if _, err := m.Verify(raw); err != nil {
		t.Fatalf("within leeway after exp: %v", err)
	}
	if n := m.sigChecks.Load(); n != 2 {
		t.Errorf("signature checks = %d, want 2 (expired entry must not be served)", n)
	}
	if n := m.cache.len(); n != 0 {
		t.Errorf("cache len after exp = %d, want 0", n)
	}

	clk.Set(exp.Add(testLeeway))
	if _, err := m.Verify(raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("past exp+leeway: %v, want ErrInvalid", err)
	}
}

func TestCacheClockBackwards(t *testing.T) {
	m, clk := newTestManager(t, nil)
	raw, _ := issue(t, m, 42, "ada@example.com", nil)
	if _, err := m.Verify(raw); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(-time.Hour)) // before iat - leeway
	if _, err := m.Verify(raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("before iat: %v, want ErrInvalid", err)
	}
}

func TestCacheNeverStoresFailures(t *testing.T) {
	m, _ := newTestManager(t, nil)
	bad := sign(t, jwt.SigningMethodHS256, otherSecret, nil, goodClaims())
	for i := range 2 {
		if _, err := m.Verify(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("try %d: %v, want ErrInvalid", i, err)
		}
	}
	if n := m.sigChecks.Load(); n != 2 {
		t.Errorf("signature checks = %d, want 2", n)
	}
	// Valid signature, failing claims: not cached either.
	badClaims := hs256(t, with("roles", nil))
	for range 2 {
		if _, err := m.Verify(badClaims); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v, want ErrInvalid", err)
		}
	}
	if n := m.cache.len(); n != 0 {
		t.Errorf("cache len = %d, want 0", n)
	}
}

func TestCacheBounded(t *testing.T) {
	for _, size := range []int{1, 5, 16, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			m, _ := newTestManager(t, func(c *Config) { c.CacheSize = size })
			raws := make([]string, size+50)
			for i := range raws {
				raws[i], _ = issue(t, m, int64(i+1), "u@example.com", []string{"r"})
				c, err := m.Verify(raws[i])
				if err != nil {
					t.Fatal(err)
				}
				if c.UserID != int64(i+1) {
					t.Fatalf("UserID = %d, want %d", c.UserID, i+1)
				}
				if n := m.cache.len(); n > size {
					t.Fatalf("after %d tokens cache len = %d > %d", i+1, n, size)
				}
			}
			if n := m.cache.len(); n == 0 {
				t.Error("cache is empty")
			}
			for _, raw := range raws { // evicted or not, all still verify
				if _, err := m.Verify(raw); err != nil {
					t.Fatal(err)
				}
			}
			if n := m.cache.len(); n > size {
				t.Errorf("cache len = %d > %d", n, size)
			}
		})
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	c := newCache(3, 1)
	claims := func(id int64) *Claims { return &Claims{UserID: id, Roles: []string{}} }
	c.put("a", claims(1), t0, t0.Add(10*time.Second), t0)
	c.put("b", claims(2), t0, t0.Add(time.Hour), t0)
	c.put("c", claims(3), t0, t0.Add(time.Hour), t0)
	now := t0.Add(time.Minute) // a has expired
	c.put("d", claims(4), t0, t0.Add(time.Hour), now)
	if c.get("a", now) != nil {
		t.Error("expired a still served")
	}
	for _, k := range []string{"b", "c", "d"} {
		if c.get(k, now) == nil {
			t.Errorf("%s was evicted instead of the expired entry", k)
		}
	}
	// Full of live entries: one arbitrary entry goes.
	c.put("e", claims(5), t0, t0.Add(time.Hour), now)
	if n := c.len(); n != 3 {
		t.Errorf("len = %d, want 3", n)
	}
	if c.get("e", now) == nil {
		t.Error("e not stored")
	}
	// Entries outside their window are not stored.
	c.put("early", claims(6), now.Add(time.Second), t0.Add(time.Hour), now)
	c.put("late", claims(7), t0, now, now)
	if c.get("early", now.Add(2*time.Second)) != nil || c.get("late", t0) != nil {
		t.Error("entry outside its validity window was stored")
	}
}

func TestCacheHitAllocs(t *testing.T) {
	m, _ := newTestManager(t, nil)
	raw, _ := issue(t, m, 42, "ada@example.com", []string{"admin", "viewer"})
	if _, err := m.Verify(raw); err != nil {
		t.Fatal(err)
	}
	before := m.sigChecks.Load()
	roles := []string{"owner", "viewer"}
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := m.Verify(raw)
		if err != nil || !c.HasAnyRole(roles) {
			panic("cached Verify failed")
		}
	})
	if allocs != 0 {
		t.Errorf("cache hit allocates %v times per run, want 0", allocs)
	}
	if m.sigChecks.Load() != before {
		t.Error("cache hits did signature work")
	}
}

func TestHasAnyRole(t *testing.T) {
	c := &Claims{Roles: []string{"admin", "viewer"}}
	tests := []struct {
		claims *Claims
		roles  []string
		want   bool
	}{
		{c, []string{"viewer"}, true},
		{c, []string{"owner", "admin"}, true},
		{c, []string{"owner"}, false},
		{c, nil, false},
		{c, []string{"Admin"}, false},
		{&Claims{Roles: []string{}}, []string{"admin"}, false},
		{nil, []string{"admin"}, false},
	}
	for _, tt := range tests {
		if got := tt.claims.HasAnyRole(tt.roles); got != tt.want {
			t.Errorf("%v.HasAnyRole(%q) = %v, want %v", tt.claims, tt.roles, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	clk := newClock(t0)
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"leeway 30s", func(c *Config) { c.Leeway = 30 * time.Second }, true},
		{"leeway 0", func(c *Config) { c.Leeway = 0 }, true},
		{"cache disabled", func(c *Config) { c.CacheSize = -1 }, true},
		{"nil clock", func(c *Config) { c.Now = nil }, true},
		{"31-byte secret", func(c *Config) { c.Secret = testSecret[:31] }, false},
		{"nil secret", func(c *Config) { c.Secret = nil }, false},
		{"empty issuer", func(c *Config) { c.Issuer = "" }, false},
		{"empty audience", func(c *Config) { c.Audience = "" }, false},
		{"leeway 31s", func(c *Config) { c.Leeway = 31 * time.Second }, false},
		{"negative leeway", func(c *Config) { c.Leeway = -time.Second }, false},
		{"TTL 0", func(c *Config) { c.TTL = 0 }, false},
		{"negative TTL", func(c *Config) { c.TTL = -time.Minute }, false},
		{"TTL under a second", func(c *Config) { c.TTL = 500 * time.Millisecond }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(clk)
			tt.mod(&cfg)
			m, err := New(cfg)
			if tt.ok && (err != nil || m == nil) {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && (err == nil || m != nil) {
				t.Fatalf("New succeeded, want error")
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	clk := newClock(t0)
	cfg := testConfig(clk)
	cfg.Secret = append([]byte(nil), testSecret...)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := issue(t, m, 1, "", nil)
	clear(cfg.Secret)
	if _, err := m.Verify(raw); err != nil {
		t.Errorf("Verify after caller cleared its secret: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	m, clk := newTestManager(t, func(c *Config) { c.CacheSize = 8 })
	raws := make([]string, 32)
	for i := range raws {
		raws[i], _ = issue(t, m, int64(i+1), "u@example.com", []string{"r"})
	}
	bad := sign(t, jwt.SigningMethodHS256, otherSecret, nil, goodClaims())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				raw := raws[(g*7+i)%len(raws)]
				c, err := m.Verify(raw)
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if !c.HasAnyRole([]string{"r"}) {
					t.Error("role missing")
					return
				}
				if _, err := m.Verify(bad); !errors.Is(err, ErrInvalid) {
					t.Errorf("bad token: %v", err)
					return
				}
				if i%50 == 0 {
					if _, _, err := m.Issue(Subject{UserID: 99, Email: "x@example.com"}); err != nil {
						t.Errorf("Issue: %v", err)
					}
					clk.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if n := m.cache.len(); n > 8 {
		t.Errorf("cache len = %d > 8", n)
	}
}

// Make sure the test helpers themselves produce what the tests assume.
func TestHelpers(t *testing.T) {
	raw := sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": nil}, goodClaims())
	hdr := decodeSegment(t, strings.Split(raw, ".")[0])
	if _, ok := hdr["typ"]; ok {
		t.Errorf("typ not removed: %v", hdr)
	}
	c := with("exp", nil, "sub", "x")
	if _, ok := c["exp"]; ok || c["sub"] != "x" {
		t.Errorf("with: %v", c)
	}
	if maps.Equal(goodClaims(), c) {
		t.Error("with modified nothing")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	m, err := New(Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, TTL: time.Hour, Leeway: testLeeway})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := issue(b, m, 42, "ada@example.com", []string{"admin", "viewer"})
	if _, err := m.Verify(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is the cost of a first-seen token, per
// algorithm: one signature check and the JSON work (the cache is off).
func BenchmarkVerifyUncached(b *testing.B) {
	for _, alg := range []string{HS256, EdDSA, ES256} {
		b.Run(alg, func(b *testing.B) {
			cfg := Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, TTL: time.Hour, Leeway: testLeeway, CacheSize: -1}
			if alg != HS256 {
				k := mustKey(b, alg)
				cfg.Secret, cfg.Keys = nil, &KeySet{Signing: k}
			}
			m, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := issue(b, m, 42, "ada@example.com", []string{"admin", "viewer"})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	m, err := New(Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, TTL: time.Hour, Leeway: testLeeway})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := issue(b, m, 42, "ada@example.com", []string{"admin", "viewer"})
	if _, err := m.Verify(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Verify(raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A machine client's token carries no email claim at all: RFC 9068
// consumers would read an empty one as an address. A person's carries it.
func TestEmailClaimOnlyForPeople(t *testing.T) {
	m, _ := newTestManager(t, nil)
	for _, tt := range []struct {
		name string
		sub  Subject
		want bool
	}{
		{"client", Subject{ClientID: "cl_x", Roles: []string{"system"}}, false},
		{"person", Subject{UserID: 7, Email: "ada@example.com", Roles: []string{}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, _, err := m.Issue(tt.sub)
			if err != nil {
				t.Fatal(err)
			}
			_, has := decodeSegment(t, strings.Split(raw, ".")[1])["email"]
			if has != tt.want {
				t.Errorf("email claim present = %v, want %v", has, tt.want)
			}
			if _, err := m.Verify(raw); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// Lookups and changes at once, from many goroutines, over a cache smaller
// than the tokens in use: every answer is the token's own claims, and
// every call is counted once, as a hit or a miss.
func TestCacheConcurrent(t *testing.T) {
	m, _ := newTestManager(t, func(c *Config) { c.CacheSize = 8 })
	raws := make([]string, 32)
	for i := range raws {
		raws[i], _ = issue(t, m, int64(i+1), "u@example.com", []string{"r"})
	}
	const workers, calls = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := range calls {
				i := (n*7 + w) % len(raws)
				c, err := m.Verify(raws[i])
				if err != nil || c.UserID != int64(i+1) {
					t.Errorf("token %d: %v, %+v", i+1, err, c)
					return
				}
			}
		})
	}
	wg.Wait()
	if hits, misses := m.CacheStats(); hits+misses != workers*calls || hits == 0 {
		t.Errorf("%d hits and %d misses for %d calls", hits, misses, workers*calls)
	}
	if n := m.cache.len(); n > 8 {
		t.Errorf("cache len %d > 8", n)
	}
}

// An entry is found by the hash of its token, and served only to that
// token: another of the same hash is a miss, and takes the entry over.
func TestCacheHashCollision(t *testing.T) {
	c := newCache(4, 1)
	a := &Claims{UserID: 1}
	c.put("a", a, t0, t0.Add(time.Hour), t0)
	s, ha := c.shard("a")
	_, hb := c.shard("b")
	// Make "b" collide with "a" by moving a's entry to b's hash.
	m := maps.Clone(*s.m.Load())
	m[hb] = m[ha]
	delete(m, ha)
	s.m.Store(&m)
	if got := c.get("b", t0); got != nil {
		t.Fatalf("b was served a's claims: %+v", got)
	}
	b := &Claims{UserID: 2}
	c.put("b", b, t0, t0.Add(time.Hour), t0)
	if got := c.get("b", t0); got != b {
		t.Errorf("b after its put: %+v", got)
	}
}
