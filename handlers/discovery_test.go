package handlers_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

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
	// The access-token key, then the id-token key (RS256).
	if r.header.Get("Cache-Control") != "public, max-age=300" || len(keys) != 2 || keys[1]["kty"] != "RSA" {
		t.Fatalf("JWKS %v with Cache-Control %q", keys, r.header.Get("Cache-Control"))
	}
	k := keys[0]
	for _, key := range keys {
		for _, private := range []string{"d", "k", "p", "q", "dp", "dq", "qi"} {
			if _, ok := key[private]; ok {
				t.Errorf("the JWKS publishes %q", private)
			}
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
	if _, keys := jwks(t, es); len(keys) != 2 || keys[0]["kty"] != "EC" || keys[0]["crv"] != "P-256" || keys[0]["alg"] != "ES256" {
		t.Errorf("ES256 JWKS = %v", keys)
	}
	if hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(esTok.access, ".")[0]); !strings.Contains(string(hdr), `"alg":"ES256"`) || !works(t, es, esTok.access) {
		t.Errorf("ES256 token header %s", hdr)
	}

	// With HS256 only the id-token key is published.
	hs := apitest.New(t, apitest.Options{SigningAlg: token.HS256})
	if _, keys := jwks(t, hs); len(keys) != 1 || keys[0]["kty"] != "RSA" {
		t.Errorf("an HS256 server publishes %v, want the id-token key alone", keys)
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

// The JWKS publishes the id tokens' keys after the access tokens', each
// with its kid, alg and use sig; an id token of Stack.IDTokens verifies
// with golang-jwt and its published JWK alone, and is no access token.
func TestJWKSPublishesIDTokenKeys(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		signing, id string
		access      int // access-token keys published
	}{
		{token.EdDSA, token.RS256, 1},
		{token.EdDSA, token.ES256, 1},
		{token.ES256, token.EdDSA, 1},
		{token.HS256, token.ES256, 0},
	} {
		t.Run(tt.signing+" and "+tt.id, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t, apitest.Options{SigningAlg: tt.signing, IDTokenAlg: tt.id})
			_, keys := jwks(t, e)
			if len(keys) != tt.access+1 {
				t.Fatalf("JWKS %v: want %d access-token keys and the id-token key", keys, tt.access)
			}
			for i, k := range keys {
				want := tt.signing
				if i == tt.access {
					want = tt.id
				}
				if k["alg"] != want || k["use"] != "sig" || k["kid"] == "" {
					t.Errorf("JWK %d = %v, want alg %s, use sig and a kid", i, k, want)
				}
			}
			idJWK := keys[tt.access]
			if pub := e.IDTokens.PublicKeys(); len(pub) != 1 || pub[0].ID != idJWK["kid"] {
				t.Errorf("the id-token key published is %s, want %v", idJWK["kid"], pub)
			}

			u := e.CreateUser(t, "id-"+strings.ToLower(tt.signing+tt.id)+"@example.com", "user")
			raw, err := e.IDTokens.Issue(token.IDClaims{
				Subject: fmt.Sprint(u.ID), Audience: "app", AuthTime: time.Now().Add(-time.Minute),
				SessionID: "4d9e6c1f-5f0e-4c4e-9a53-2f1d1c9e0d6b", Nonce: "n-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			byKid := map[string]map[string]string{}
			for _, k := range keys {
				byKid[k["kid"]] = k
			}
			parsed, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
				kid, _ := tok.Header["kid"].(string)
				k, ok := byKid[kid]
				if !ok || tok.Header["typ"] != "JWT" || tok.Method.Alg() != k["alg"] {
					return nil, jwt.ErrTokenUnverifiable
				}
				return publicKeyOf(t, k), nil
			}, jwt.WithValidMethods([]string{tt.id}), jwt.WithIssuer(apitest.Issuer), jwt.WithAudience("app"),
				jwt.WithExpirationRequired(), jwt.WithIssuedAt())
			if err != nil || !parsed.Valid {
				t.Fatalf("verifying the id token with the JWKS: %v", err)
			}
			if claims, _ := parsed.Claims.(jwt.MapClaims); claims["sub"] != fmt.Sprint(u.ID) || claims["azp"] != "app" || claims["nonce"] != "n-1" {
				t.Errorf("claims %v", claims)
			}
			if parsed.Header["kid"] != idJWK["kid"] {
				t.Errorf("the id token's kid %v, want the id-token key's %s", parsed.Header["kid"], idJWK["kid"])
			}
			if works(t, e, raw) {
				t.Error("an id token was taken for an access token")
			}
			if c, err := e.IDTokens.ParseHint(raw); err != nil || c.Subject != fmt.Sprint(u.ID) {
				t.Errorf("ParseHint = %+v, %v", c, err)
			}
			if _, err := e.IDTokens.ParseHint(e.Token(t, u)); err == nil {
				t.Error("an access token was taken for an id_token_hint")
			}
		})
	}
}

// publicKeyOf rebuilds the public key of a JWK from its members alone, as
// a relying party would.
func publicKeyOf(t *testing.T, k map[string]string) any {
	t.Helper()
	member := func(name string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(k[name])
		if err != nil || len(b) == 0 {
			t.Fatalf("JWK member %s = %q", name, k[name])
		}
		return b
	}
	switch {
	case k["kty"] == "OKP" && k["crv"] == "Ed25519":
		return ed25519.PublicKey(member("x"))
	case k["kty"] == "EC" && k["crv"] == "P-256":
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(member("x")), Y: new(big.Int).SetBytes(member("y"))}
	case k["kty"] == "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(member("n")), E: int(new(big.Int).SetBytes(member("e")).Int64())}
	}
	t.Fatalf("JWK %v", k)
	return nil
}
