package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// newTestIDTokens returns IDTokens signing with k on a clock at t0.
func newTestIDTokens(t testing.TB, k Key) (*IDTokens, *clock) {
	t.Helper()
	clk := newClock(t0)
	ids, err := NewIDTokens(IDConfig{Keys: &KeySet{Signing: k}, Issuer: testIssuer, TTL: testTTL, Leeway: testLeeway, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ids, clk
}

// testIDClaims are the claims of a person signed in to client "app".
func testIDClaims() IDClaims {
	verified := true
	return IDClaims{
		Subject: "42", Audience: "app", AuthTime: t0.Add(-time.Hour), Nonce: "n-0S6_WzA2Mj",
		SessionID: "4d9e6c1f-5f0e-4c4e-9a53-2f1d1c9e0d6b", AMR: []string{"pwd"},
		Email: "ada@example.com", EmailVerified: &verified,
	}
}

// decodeJSON decodes a segment of a JWT keeping numbers as written.
func decodeJSON(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

// An id token carries exactly the claims it was issued with, iss, iat and
// exp (JSON numbers), aud as a single string and azp as the client, under
// the header of its key; and it verifies with golang-jwt and the key's JWK
// alone.
func TestIDTokenClaims(t *testing.T) {
	verified := false
	for _, tt := range []struct {
		name   string
		alg    string
		claims IDClaims
		want   map[string]any
	}{
		{"RS256, every claim", RS256, testIDClaims(), map[string]any{
			"nonce": "n-0S6_WzA2Mj", "amr": []any{"pwd"}, "acr": ACRPassword, "email": "ada@example.com", "email_verified": true,
		}},
		{"ES256, an unverified email", ES256, func() IDClaims {
			c := testIDClaims()
			c.EmailVerified = &verified
			return c
		}(), map[string]any{
			"nonce": "n-0S6_WzA2Mj", "amr": []any{"pwd"}, "acr": ACRPassword, "email": "ada@example.com", "email_verified": false,
		}},
		{"EdDSA, no nonce, amr or email", EdDSA, func() IDClaims {
			c := testIDClaims()
			c.Nonce, c.AMR, c.Email, c.EmailVerified = "", nil, "", nil
			return c
		}(), map[string]any{}},
		{"azp given as the audience", RS256, func() IDClaims {
			c := testIDClaims()
			c.AuthorizedParty = "app"
			return c
		}(), map[string]any{
			"nonce": "n-0S6_WzA2Mj", "amr": []any{"pwd"}, "acr": ACRPassword, "email": "ada@example.com", "email_verified": true,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := mustKey(t, tt.alg)
			ids, clk := newTestIDTokens(t, k)
			clk.Set(t0.Add(700 * time.Millisecond)) // iat is truncated to the second
			raw, err := ids.Issue(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(raw, ".")
			if diff := cmp.Diff(map[string]any{"alg": tt.alg, "typ": "JWT", "kid": k.ID}, decodeJSON(t, parts[0])); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			want := map[string]any{
				"iss": testIssuer, "sub": "42", "aud": "app", "azp": "app",
				"sid":       "4d9e6c1f-5f0e-4c4e-9a53-2f1d1c9e0d6b",
				"iat":       json.Number("1772600767"), // t0
				"exp":       json.Number("1772601667"), // t0 + 15m
				"auth_time": json.Number("1772597167"), // t0 - 1h
			}
			for k, v := range tt.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, decodeJSON(t, parts[1])); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}

			j, err := k.PublicJWK()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != j.Kid {
					return nil, errors.New("kid")
				}
				return publicFromJWK(t, j), nil
			}, jwt.WithValidMethods([]string{tt.alg}), jwt.WithIssuer(testIssuer), jwt.WithAudience("app"),
				jwt.WithTimeFunc(clk.Now), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
			if err != nil || !tok.Valid {
				t.Fatalf("golang-jwt with the JWK's key: %v", err)
			}

			got, err := ids.ParseHint(raw)
			if err != nil {
				t.Fatal(err)
			}
			back := tt.claims
			back.AuthorizedParty, back.Issuer = "app", testIssuer
			back.IssuedAt, back.ExpiresAt = t0, t0.Add(testTTL)
			if diff := cmp.Diff(&back, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("ParseHint (-want +got):\n%s", diff)
			}
		})
	}
}

// Issue refuses claims no id token may have, and keys that only verify.
func TestIDTokenIssueRefuses(t *testing.T) {
	ids, _ := newTestIDTokens(t, mustKey(t, EdDSA))
	for _, tt := range []struct {
		name   string
		change func(*IDClaims)
	}{
		{"no sub", func(c *IDClaims) { c.Subject = "" }},
		{"sub not a number", func(c *IDClaims) { c.Subject = "ada" }},
		{"sub zero", func(c *IDClaims) { c.Subject = "0" }},
		{"sub with a leading zero", func(c *IDClaims) { c.Subject = "042" }},
		{"sub negative", func(c *IDClaims) { c.Subject = "-42" }},
		{"no aud", func(c *IDClaims) { c.Audience = "" }},
		{"azp another client", func(c *IDClaims) { c.AuthorizedParty = "other" }},
		{"no auth_time", func(c *IDClaims) { c.AuthTime = time.Time{} }},
		{"no sid", func(c *IDClaims) { c.SessionID = "" }},
		{"over 8 KiB", func(c *IDClaims) { c.Nonce = strings.Repeat("n", maxTokenLen) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testIDClaims()
			tt.change(&c)
			if raw, err := ids.Issue(c); err == nil {
				t.Errorf("Issue = %.40s…, want an error", raw)
			}
		})
	}
	k := mustKey(t, RS256)
	verifier, err := NewIDTokens(IDConfig{Keys: &KeySet{Verify: []Key{{ID: k.ID, Alg: k.Alg, Public: k.Public}}}, Issuer: testIssuer, TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Issue(testIDClaims()); err == nil {
		t.Error("IDTokens of public keys alone issued a token")
	}
}

// NewIDTokens and SetKeys take RS256, ES256 and EdDSA keys, and refuse the
// rest of a bad configuration.
func TestNewIDTokens(t *testing.T) {
	for _, alg := range []string{RS256, ES256, EdDSA} {
		k := mustKey(t, alg)
		ids, _ := newTestIDTokens(t, k)
		if ids.Alg() != alg || len(ids.PublicKeys()) != 1 || ids.PublicKeys()[0].Private != nil || ids.TTL() != testTTL {
			t.Errorf("%s: Alg %s, public keys %v", alg, ids.Alg(), ids.PublicKeys())
		}
	}
	good := IDConfig{Keys: &KeySet{Signing: mustKey(t, RS256)}, Issuer: testIssuer, TTL: testTTL, Leeway: testLeeway}
	for _, tt := range []struct {
		name   string
		change func(*IDConfig)
	}{
		{"no keys", func(c *IDConfig) { c.Keys = nil }},
		{"no issuer", func(c *IDConfig) { c.Issuer = "" }},
		{"TTL under a second", func(c *IDConfig) { c.TTL = time.Millisecond }},
		{"negative leeway", func(c *IDConfig) { c.Leeway = -time.Second }},
		{"leeway over 30s", func(c *IDConfig) { c.Leeway = time.Minute }},
		{"a key of another alg", func(c *IDConfig) {
			k := mustKey(t, ES256)
			k.Alg = RS256
			c.Keys = &KeySet{Signing: k}
		}},
		{"a signing key without its private half", func(c *IDConfig) {
			k := mustKey(t, RS256)
			k.Private = nil
			c.Keys = &KeySet{Signing: k}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			if _, err := NewIDTokens(cfg); err == nil {
				t.Error("NewIDTokens succeeded")
			}
		})
	}
}

// ParseHint accepts the provider's own id token, expired too, and refuses
// every token that is not one: another signature, issuer or type, an
// access token, an unknown kid, another or no algorithm, a token not yet
// valid.
func TestParseHint(t *testing.T) {
	k := mustKey(t, RS256)
	ids, clk := newTestIDTokens(t, k)
	good, err := ids.Issue(testIDClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	claims := func() jwt.MapClaims {
		var m jwt.MapClaims
		if err := json.Unmarshal(mustDecode(t, parts[1]), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := claims()
		change(c)
		return c
	}
	// signed signs claims with key under method, with the header of an id
	// token of kid changed by hdr (nil values delete).
	signed := func(method jwt.SigningMethod, key any, kid string, hdr map[string]any, c jwt.MapClaims) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, c)
		tok.Header = map[string]any{"alg": method.Alg(), "typ": "JWT", "kid": kid}
		for name, v := range hdr {
			if v == nil {
				delete(tok.Header, name)
			} else {
				tok.Header[name] = v
			}
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	foreign := mustKey(t, RS256) // a key that is not in the set, under our kid
	other, _ := newTestIDTokens(t, mustKey(t, RS256))
	otherIssuer, err := NewIDTokens(IDConfig{Keys: &KeySet{Signing: k}, Issuer: "https://evil.example", TTL: testTTL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := otherIssuer.Issue(testIDClaims())
	// An access token, from a Manager of keys of its own, and one signed
	// with the id-token key itself.
	access, _ := keysManager(t, mustKey(t, ES256))
	accessToken, _, _ := access.Issue(Subject{UserID: 42})
	accessTyped := sign(t, jwt.SigningMethodRS256, k.Private, map[string]any{"kid": k.ID}, claims())
	es := mustKey(t, ES256)
	jwkN, _ := k.PublicJWK()
	none := b64JSON(t, map[string]string{"alg": "none", "typ": "JWT", "kid": k.ID}) + "." + parts[1] + "."
	unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)

	future := newClock(t0.Add(time.Minute))
	ahead, err := NewIDTokens(IDConfig{Keys: &KeySet{Signing: k}, Issuer: testIssuer, TTL: testTTL, Now: future.Now})
	if err != nil {
		t.Fatal(err)
	}
	early, _ := ahead.Issue(testIDClaims())
	future.Set(t0.Add(testLeeway))
	withinLeeway, _ := ahead.Issue(testIDClaims())

	for _, tt := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"genuine", good, true},
		{"iat within the leeway ahead", withinLeeway, true},
		{"typ jwt in lower case", signed(jwt.SigningMethodRS256, k.Private, k.ID, map[string]any{"typ": "jwt"}, claims()), true},
		{"wrong signature", parts[0] + "." + parts[1] + "." + strings.Split(other.mustIssue(t), ".")[2], false},
		{"tampered claims", parts[0] + "." + b64JSON(t, with(func(c jwt.MapClaims) { c["sub"] = "1" })) + "." + parts[2], false},
		{"a foreign key under our kid", signed(jwt.SigningMethodRS256, foreign.Private, k.ID, nil, claims()), false},
		{"an unknown kid", other.mustIssue(t), false},
		{"no kid", signed(jwt.SigningMethodRS256, k.Private, "", map[string]any{"kid": nil}, claims()), false},
		{"wrong issuer", evil, false},
		{"an access token", accessToken, false},
		{"typ at+jwt with the id key", accessTyped, false},
		{"no typ", signed(jwt.SigningMethodRS256, k.Private, k.ID, map[string]any{"typ": nil}, claims()), false},
		{"crit", signed(jwt.SigningMethodRS256, k.Private, k.ID, map[string]any{"crit": []string{"exp"}}, claims()), false},
		{"alg none under our kid", none, false},
		{"alg none, no kid", unsigned, false},
		{"HS256 with the modulus as secret", signed(jwt.SigningMethodHS256, mustDecode(t, jwkN.N), k.ID, nil, claims()), false},
		{"HS256 with a secret", signed(jwt.SigningMethodHS256, testSecret, k.ID, nil, claims()), false},
		{"ES256 under the RS256 kid", signed(jwt.SigningMethodES256, es.Private, k.ID, nil, claims()), false},
		{"RS384 with the key", signed(jwt.SigningMethodRS384, k.Private, k.ID, nil, claims()), false},
		{"PS256 with the key", signed(jwt.SigningMethodPS256, k.Private, k.ID, nil, claims()), false},
		{"not valid yet", early, false},
		{"nbf ahead", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() })), false},
		{"iat a string", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { c["iat"] = "1772600767" })), false},
		{"no iat", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { delete(c, "iat") })), false},
		{"no exp", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"no auth_time", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { delete(c, "auth_time") })), false},
		{"no sid", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { delete(c, "sid") })), false},
		{"no sub", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { delete(c, "sub") })), false},
		{"azp another client", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { c["azp"] = "other" })), false},
		{"aud an array", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { c["aud"] = []string{"app"} })), false},
		{"empty", "", false},
		{"over 8 KiB", signed(jwt.SigningMethodRS256, k.Private, k.ID, nil, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", maxTokenLen) })), false},
		{"not a JWT", "not.a.jwt", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ids.ParseHint(tt.raw)
			switch {
			case tt.ok && err != nil:
				t.Errorf("ParseHint = %v, want it accepted", err)
			case tt.ok && (c.Subject != "42" || c.Audience != "app" || c.SessionID == ""):
				t.Errorf("ParseHint = %+v", c)
			case !tt.ok && !errors.Is(err, ErrInvalid):
				t.Errorf("ParseHint = %+v, %v; want ErrInvalid", c, err)
			}
		})
	}

	// Expired long ago, a hint is still accepted while its key is in the
	// set; once the key is gone, it is not.
	clk.Advance(30 * 24 * time.Hour)
	if c, err := ids.ParseHint(good); err != nil || !c.ExpiresAt.Equal(t0.Add(testTTL)) {
		t.Errorf("an expired hint: %+v, %v", c, err)
	}
	if err := ids.SetKeys(KeySet{Signing: mustKey(t, RS256)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ids.ParseHint(good); !errors.Is(err, ErrInvalid) {
		t.Errorf("a hint whose key has left the set: %v", err)
	}
}

// An id token is never an access token: a Manager refuses it even when it
// verifies with the same EdDSA or ES256 key (its typ is JWT, not at+jwt).
func TestIDTokensAreNotAccessTokens(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		k := mustKey(t, alg)
		ids, _ := newTestIDTokens(t, k)
		c := testIDClaims()
		c.Audience = testAudience
		raw, err := ids.Issue(c)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := keysManager(t, k)
		if _, err := m.Verify(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: an id token verified as an access token: %v", alg, err)
		}
	}
}

func (t *IDTokens) mustIssue(tb testing.TB) string {
	tb.Helper()
	raw, err := t.Issue(testIDClaims())
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func mustDecode(t testing.TB, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
