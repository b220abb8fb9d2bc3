package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func mustKey(t testing.TB, alg string) Key {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keysManager is a test Manager signing with k.
func keysManager(t testing.TB, k Key) (*Manager, *clock) {
	t.Helper()
	return newTestManager(t, func(c *Config) { c.Secret, c.Keys = nil, &KeySet{Signing: k} })
}

// publicFromJWK rebuilds a public key from its JWK alone, as another
// service would.
func publicFromJWK(t *testing.T, j JWK) any {
	t.Helper()
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch j.Kty {
	case "OKP":
		return ed25519.PublicKey(dec(j.X))
	case "EC":
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(dec(j.X)), Y: new(big.Int).SetBytes(dec(j.Y))}
	}
	t.Fatalf("JWK of kty %q", j.Kty)
	return nil
}

// A token verifies with golang-jwt and the public key from the JWK alone.
func TestAsymmetricTokensVerifyWithTheJWK(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, alg)
			m, _ := keysManager(t, k)
			raw, _, err := m.Issue(Subject{UserID: 42, Email: "ada@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			j, err := k.PublicJWK()
			if err != nil {
				t.Fatal(err)
			}
			if j.Kid != k.ID || j.Alg != alg || j.Use != "sig" {
				t.Errorf("JWK = %+v", j)
			}
			tok, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != j.Kid {
					return nil, errors.New("kid")
				}
				return publicFromJWK(t, j), nil
			}, jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation())
			if err != nil || !tok.Valid {
				t.Fatalf("golang-jwt with the JWK's key: %v", err)
			}
			if c, err := m.Verify(raw); err != nil || c.UserID != 42 {
				t.Fatalf("Verify = %v, %v", c, err)
			}
			if m.Alg() != alg || len(m.PublicKeys()) != 1 {
				t.Errorf("Alg %s, %d public keys", m.Alg(), len(m.PublicKeys()))
			}
		})
	}
}

func TestAsymmetricRejects(t *testing.T) {
	k := mustKey(t, EdDSA)
	m, _ := keysManager(t, k)
	good, _, err := m.Issue(Subject{UserID: 42})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	header := func(kid string) string {
		return b64JSON(t, map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
	}
	pubDER, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	foreign := mustKey(t, EdDSA)
	foreign.ID = k.ID // a foreign key that claims our kid
	tests := []struct {
		name string
		raw  string
	}{
		{"tampered kid", header("someone-else") + "." + parts[1] + "." + parts[2]},
		{"no kid", b64JSON(t, map[string]string{"alg": "EdDSA", "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2]},
		{"HS256 signed with the public key's bytes", sign(t, jwt.SigningMethodHS256, []byte(k.Public.(ed25519.PublicKey)), map[string]any{"kid": k.ID}, goodClaims())},
		{"HS256 signed with the public key's DER", sign(t, jwt.SigningMethodHS256, pubDER, map[string]any{"kid": k.ID}, goodClaims())},
		{"EdDSA signed by a foreign key", sign(t, jwt.SigningMethodEdDSA, foreign.Private, map[string]any{"kid": k.ID}, goodClaims())},
		{"ES256 under an EdDSA kid", sign(t, jwt.SigningMethodES256, mustKey(t, ES256).Private, map[string]any{"kid": k.ID}, goodClaims())},
		{"HS256 signed with the test secret", hs256(t, goodClaims())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Verify(tt.raw); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
	// The genuine token, for contrast, verifies.
	if _, err := m.Verify(good); err != nil {
		t.Errorf("the genuine token: %v", err)
	}
}

// After a rotation new tokens carry the new kid, and the old key's tokens
// verify while it is in the set.
func TestSetKeysRotates(t *testing.T) {
	old, next := mustKey(t, EdDSA), mustKey(t, EdDSA)
	m, _ := keysManager(t, old)
	before, _, _ := m.Issue(Subject{UserID: 1})
	if err := m.SetKeys(KeySet{Signing: next, Verify: []Key{old}}); err != nil {
		t.Fatal(err)
	}
	after, _, _ := m.Issue(Subject{UserID: 1})
	if kid := decodeSegment(t, strings.Split(after, ".")[0])["kid"]; string(kid) != `"`+next.ID+`"` {
		t.Errorf("kid after rotation = %s, want %s", kid, next.ID)
	}
	for _, raw := range []string{before, after} {
		if _, err := m.Verify(raw); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if err := m.SetKeys(KeySet{Signing: next}); err != nil {
		t.Fatal(err)
	}
	m.cache = nil // the old key's token must now fail on its own merits
	if _, err := m.Verify(before); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token of a key no longer in the set: %v", err)
	}
	hs, _ := newTestManager(t, nil)
	if hs.PublicKeys() != nil || hs.Alg() != "HS256" {
		t.Error("an HS256 manager publishes keys")
	}
	if err := hs.SetKeys(KeySet{Signing: next}); err == nil {
		t.Error("SetKeys on an HS256 manager succeeded")
	}
}

// A Manager of public keys alone verifies, as another service does, and
// issues nothing.
func TestVerifyOnly(t *testing.T) {
	k := mustKey(t, ES256)
	signer, _ := keysManager(t, k)
	raw, _, err := signer.Issue(Subject{UserID: 9})
	if err != nil {
		t.Fatal(err)
	}
	pub := Key{ID: k.ID, Alg: k.Alg, Public: k.Public}
	verifier, _ := newTestManager(t, func(c *Config) { c.Secret, c.Keys = nil, &KeySet{Verify: []Key{pub}} })
	if c, err := verifier.Verify(raw); err != nil || c.UserID != 9 {
		t.Fatalf("Verify = %v, %v", c, err)
	}
	if _, _, err := verifier.Issue(Subject{UserID: 9}); err == nil {
		t.Error("a verify-only Manager issued a token")
	}
}

// ParseJWK reads back what PublicJWK writes, and refuses every JWK that is
// not a public Ed25519 or P-256 signing key stated exactly.
func TestParseJWK(t *testing.T) {
	ed, ec := mustKey(t, EdDSA), mustKey(t, ES256)
	edJWK, err := ed.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	ecJWK, err := ec.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	private := "c2VjcmV0"
	with := func(j JWK, change func(*JWK)) JWK {
		change(&j)
		return j
	}
	good := []struct {
		name string
		jwk  JWK
		want Key
	}{
		{"Ed25519", edJWK, ed},
		{"P-256", ecJWK, ec},
		{"no use", with(edJWK, func(j *JWK) { j.Use = "" }), ed},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseJWK(tt.jwk)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != tt.want.ID || k.Alg != tt.want.Alg || k.Private != nil {
				t.Errorf("key %s %s (private %v), want %s %s", k.ID, k.Alg, k.Private != nil, tt.want.ID, tt.want.Alg)
			}
			if eq, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tt.want.Public) {
				t.Error("the public key differs from the one the JWK was made of")
			}
		})
	}
	// Every key of both algorithms is a point of its curve.
	for range 200 {
		for _, alg := range []string{EdDSA, ES256} {
			j, _ := mustKey(t, alg).PublicJWK()
			if _, err := ParseJWK(j); err != nil {
				t.Fatalf("a random %s key: %v", alg, err)
			}
		}
	}
	// A token one key signs verifies with the key parsed from its JWK.
	signer, _ := keysManager(t, ec)
	raw, _, err := signer.Issue(Subject{UserID: 3})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ParseJWK(ecJWK)
	verifier, _ := newTestManager(t, func(c *Config) { c.Secret, c.Keys = nil, &KeySet{Verify: []Key{pub}} })
	if _, err := verifier.Verify(raw); err != nil {
		t.Errorf("a token verified with the parsed JWK: %v", err)
	}

	yAt := func(y []byte) string { // an Ed25519 encoding of y, little-endian
		b := make([]byte, 32)
		copy(b, y)
		return b64(b)
	}
	p := make([]byte, 32) // 2^255 - 19, little-endian: y = p is not canonical
	for i := range p {
		p[i] = 0xff
	}
	p[0], p[31] = 0xed, 0x7f
	std := base64.RawStdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, make([]byte, 30)...)) // holds + and /
	bad := []struct {
		name string
		jwk  JWK
	}{
		{"no kid", with(edJWK, func(j *JWK) { j.Kid = "" })},
		{"Ed25519 with d", with(edJWK, func(j *JWK) { j.D = &private })},
		{"P-256 with d", with(ecJWK, func(j *JWK) { j.D = &private })},
		{"an empty d", with(ecJWK, func(j *JWK) { j.D = new(string) })},
		{"use enc", with(edJWK, func(j *JWK) { j.Use = "enc" })},
		{"no alg", with(edJWK, func(j *JWK) { j.Alg = "" })},
		{"OKP with ES256", with(edJWK, func(j *JWK) { j.Alg = ES256 })},
		{"OKP with HS256", with(edJWK, func(j *JWK) { j.Alg = "HS256" })},
		{"OKP on P-256", with(edJWK, func(j *JWK) { j.Crv = "P-256" })},
		{"OKP X25519", with(edJWK, func(j *JWK) { j.Crv = "X25519" })},
		{"OKP Ed448", with(edJWK, func(j *JWK) { j.Crv = "Ed448" })},
		{"OKP with a y", with(edJWK, func(j *JWK) { j.Y = ecJWK.Y })},
		{"EC with EdDSA", with(ecJWK, func(j *JWK) { j.Alg = EdDSA })},
		{"EC with ES384", with(ecJWK, func(j *JWK) { j.Alg = "ES384" })},
		{"EC on Ed25519", with(ecJWK, func(j *JWK) { j.Crv = "Ed25519" })},
		{"EC on P-384", with(ecJWK, func(j *JWK) { j.Crv = "P-384"; j.Alg = "ES384" })},
		{"EC without y", with(ecJWK, func(j *JWK) { j.Y = "" })},
		{"RSA", JWK{Kty: "RSA", Kid: "r", Alg: "RS256", Use: "sig"}},
		{"oct", JWK{Kty: "oct", Kid: "o", Alg: "HS256", Use: "sig"}},
		{"no kty", with(edJWK, func(j *JWK) { j.Kty = "" })},
		{"x with padding", with(edJWK, func(j *JWK) { j.X += "=" })},
		{"x in the standard alphabet", with(edJWK, func(j *JWK) { j.X = std })},
		{"x not base64", with(edJWK, func(j *JWK) { j.X = "*" + j.X[1:] })},
		{"x with stray bits", with(edJWK, func(j *JWK) { j.X = j.X[:len(j.X)-1] + "B" })},
		{"Ed25519 x too short", with(edJWK, func(j *JWK) { j.X = b64(make([]byte, 31)) })},
		{"Ed25519 x too long", with(edJWK, func(j *JWK) { j.X = b64(make([]byte, 33)) })},
		{"Ed25519 point not on the curve", with(edJWK, func(j *JWK) { j.X = yAt([]byte{2}) })},
		{"Ed25519 y not canonical", with(edJWK, func(j *JWK) { j.X = b64(p) })},
		{"Ed25519 x = 0 with the sign bit", with(edJWK, func(j *JWK) { j.X = yAt([]byte{1, 31: 0x80}) })},
		{"P-256 point not on the curve", with(ecJWK, func(j *JWK) { j.X, j.Y = yAt([]byte{1}), yAt([]byte{1}) })},
		{"P-256 x short of its leading zeros", with(ecJWK, func(j *JWK) { j.X = b64(make([]byte, 31)) })},
		{"P-256 y too long", with(ecJWK, func(j *JWK) { j.Y = b64(make([]byte, 33)) })},
		{"P-256 y not base64", with(ecJWK, func(j *JWK) { j.Y = "!" })},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := ParseJWK(tt.jwk); err == nil {
				t.Errorf("ParseJWK = %s %s, want an error", k.ID, k.Alg)
			}
		})
	}
}
