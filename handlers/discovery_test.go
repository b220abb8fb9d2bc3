package handlers_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/token"
)

// jwks fetches the server's JWK Set.
func jwks(t *testing.T, e *apitest.Env) (response, []map[string]string) {
	t.Helper()
	r := do(t, "GET", e.URL+"/.well-known/jwks.json", nil, nil)
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal([]byte(r.body), &set); err != nil || r.status != 200 {
		t.Fatalf("GET /.well-known/jwks.json = %d %s", r.status, r.body)
	}
	return r, set.Keys
}

// A token from /token verifies with golang-jwt and the JWKS's key alone,
// and the JWKS holds no private or symmetric key.
func TestJWKSVerifiesTokens(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "jwks@example.com", "user")
	tok := loginTokens(t, e, u)
	r, keys := jwks(t, e)
	if r.header.Get("Cache-Control") != "public, max-age=300" || len(keys) != 1 {
		t.Fatalf("JWKS %v with Cache-Control %q", keys, r.header.Get("Cache-Control"))
	}
	k := keys[0]
	for _, private := range []string{"d", "k", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("the JWKS publishes %q", private)
		}
	}
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
		t.Errorf("JWK %v", k)
	}
	x, err := base64.RawURLEncoding.DecodeString(k["x"])
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok.access, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != k["kid"] {
			return nil, jwt.ErrTokenUnverifiable
		}
		return ed25519.PublicKey(x), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(apitest.Issuer), jwt.WithAudience(apitest.Audience))
	if err != nil || !parsed.Valid {
		t.Fatalf("verifying with the JWKS key: %v", err)
	}

	// ES256 by choice: an EC key, and tokens signed with it.
	es := apitest.New(t, apitest.Options{SigningAlg: token.ES256})
	esUser := es.CreateUser(t, "es256@example.com", "user")
	esTok := loginTokens(t, es, esUser)
	if _, keys := jwks(t, es); len(keys) != 1 || keys[0]["kty"] != "EC" || keys[0]["crv"] != "P-256" || keys[0]["alg"] != "ES256" {
		t.Errorf("ES256 JWKS = %v", keys)
	}
	if hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(esTok.access, ".")[0]); !strings.Contains(string(hdr), `"alg":"ES256"`) || !works(t, es, esTok.access) {
		t.Errorf("ES256 token header %s", hdr)
	}

	// With HS256 there is nothing to publish.
	hs := apitest.New(t, apitest.Options{SigningAlg: token.HS256})
	if _, keys := jwks(t, hs); len(keys) != 0 {
		t.Errorf("an HS256 server publishes %v", keys)
	}
}

// Tokens that are not the server's own are 401: a tampered or unknown kid,
// HS256 signed with the public key's bytes, EdDSA signed by a foreign key.
func TestForeignSignaturesAreRefused(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "forged@example.com", "user")
	good := e.Token(t, u)
	_, keys := jwks(t, e)
	pub, _ := base64.RawURLEncoding.DecodeString(keys[0]["x"])
	parts := strings.Split(good, ".")
	var claims jwt.MapClaims
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	signed := func(m jwt.SigningMethod, key any, kid string) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	header := func(kid string) string {
		h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
		return base64.RawURLEncoding.EncodeToString(h)
	}
	_, foreign, _ := ed25519.GenerateKey(nil)
	for name, raw := range map[string]string{
		"tampered kid":          header(keys[0]["kid"]+"x") + "." + parts[1] + "." + parts[2],
		"unknown kid":           signed(jwt.SigningMethodEdDSA, foreign, "unknown"),
		"HS256 with the public": signed(jwt.SigningMethodHS256, pub, keys[0]["kid"]),
		"foreign EdDSA key":     signed(jwt.SigningMethodEdDSA, foreign, keys[0]["kid"]),
	} {
		t.Run(name, func(t *testing.T) {
			if works(t, e, raw) {
				t.Error("accepted")
			}
		})
	}
	if !works(t, e, good) {
		t.Error("the genuine token is refused")
	}
}

// The metadata names the server's real endpoints: each works as described.
func TestAuthorizationServerMetadata(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "meta@example.com", "user")
	r := do(t, "GET", e.URL+"/.well-known/oauth-authorization-server", nil, nil)
	var m struct {
		Issuer, TokenEndpoint, JWKSURI, RevocationEndpoint string
		Grants                                             []string `json:"grant_types_supported"`
	}
	_ = json.Unmarshal([]byte(r.body), &m)
	var raw map[string]any
	_ = json.Unmarshal([]byte(r.body), &raw)
	m.TokenEndpoint, _ = raw["token_endpoint"].(string)
	m.JWKSURI, _ = raw["jwks_uri"].(string)
	m.RevocationEndpoint, _ = raw["revocation_endpoint"].(string)
	if r.status != 200 || m.Issuer != apitest.Issuer || m.TokenEndpoint != e.URL+"/token" {
		t.Fatalf("metadata = %d %s", r.status, r.body)
	}
	for _, methods := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		if got := fmt.Sprint(raw[methods]); got != "[client_secret_basic client_secret_post none]" {
			t.Errorf("%s = %s", methods, got)
		}
	}
	for _, g := range []string{"password", "refresh_token", "client_credentials"} {
		if !strings.Contains(strings.Join(m.Grants, " "), g) {
			t.Errorf("grant_types_supported %v lacks %s", m.Grants, g)
		}
	}
	tok := tokensOf(t, do(t, "POST", m.TokenEndpoint, form("grant_type", "password", "username", u.Email, "password", u.Password), map[string]string{"Content-Type": formCT}))
	if r := do(t, "GET", m.JWKSURI, nil, nil); r.status != 200 || !strings.Contains(r.body, `"keys"`) {
		t.Errorf("jwks_uri = %d %s", r.status, r.body)
	}
	if r := do(t, "POST", m.RevocationEndpoint, strings.NewReader(url.Values{"token": {tok.refresh}}.Encode()), map[string]string{"Content-Type": formCT}); r.status != 200 {
		t.Errorf("revocation_endpoint = %d", r.status)
	}
	if works(t, e, tok.access) {
		t.Error("the revocation endpoint of the metadata did not revoke")
	}
}

// The metadata's issuer and endpoints are on the public URL, whatever Host
// or X-Forwarded-* header a request carries, so that no client can have a
// shared cache keep metadata that sends others to its own host; caches may
// keep it as long as the JWKS (issue #18, finding 10).
func TestMetadataIsOnThePublicURL(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	for _, tt := range []struct {
		name   string
		header map[string]string
	}{
		{"plain", nil},
		{"another Host", map[string]string{"Host": "evil.example"}},
		{"another Host and port", map[string]string{"Host": "evil.example:8443"}},
		{"X-Forwarded-Host", map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}},
		{"Forwarded", map[string]string{"Forwarded": `host=evil.example;proto=https`}},
		{"all at once", map[string]string{"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "GET", e.URL+"/.well-known/oauth-authorization-server", nil, tt.header)
			var m map[string]any
			if err := json.Unmarshal([]byte(r.body), &m); err != nil || r.status != 200 {
				t.Fatalf("metadata = %d %s", r.status, r.body)
			}
			want := map[string]string{
				"issuer":              apitest.Issuer, // ROLEGATE_JWT_ISSUER, set by apitest
				"token_endpoint":      e.URL + "/token",
				"jwks_uri":            e.URL + "/.well-known/jwks.json",
				"revocation_endpoint": e.URL + "/token/revoke",
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %s", k, m[k], v)
				}
			}
			if strings.Contains(r.body, "evil.example") {
				t.Errorf("the metadata names the request's host: %s", r.body)
			}
			if got := r.header.Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control = %q, want public, max-age=300", got)
			}
		})
	}
}
