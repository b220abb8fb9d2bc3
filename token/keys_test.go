package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func mustKey(t testing.TB, alg string) Key {
	t.Helper()
	if alg == RS256 {
		// RSA keys take a while to make: the tests share a few.
		k := rsaKeys()[rsaNext.Add(1)%uint32(len(rsaKeys()))]
		k.ID = newID()
		return k
	}
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rsaKeys are the RSA keys the tests share, handed out in turn by mustKey
// (each time with a kid of its own).
var (
	rsaKeys = sync.OnceValue(func() []Key {
		var keys []Key
		for range 3 {
			k, err := GenerateKey(RS256)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
		return keys
	})
	rsaNext atomic.Uint32
)

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
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec(j.N)), E: int(new(big.Int).SetBytes(dec(j.E)).Int64())}
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
		{"RSA without n and e", JWK{Kty: "RSA", Kid: "r", Alg: "RS256", Use: "sig"}},
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

// GenerateKey(RS256) makes a 2048-bit RSA key of exponent 65537, whose JWK
// ParseJWK reads back; ParseJWK refuses every RSA JWK that is not a public
// RS256 key of 2048 to 4096 bits and exponent 65537 stated exactly.
func TestParseRSAJWK(t *testing.T) {
	k, err := GenerateKey(RS256)
	if err != nil {
		t.Fatal(err)
	}
	if pub := k.Public.(*rsa.PublicKey); pub.N.BitLen() != 2048 || pub.E != 65537 || k.Alg != RS256 || k.ID == "" {
		t.Fatalf("GenerateKey(RS256) = %s %s of %d bits, e %d", k.ID, k.Alg, pub.N.BitLen(), pub.E)
	}
	j, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	if j.Kty != "RSA" || j.E != "AQAB" || j.Kid != k.ID || j.Alg != RS256 || j.Use != "sig" || j.Crv != "" || j.X != "" || j.Y != "" {
		t.Errorf("JWK = %+v", j)
	}
	if j.private() {
		t.Error("the JWK carries a private member")
	}
	back, err := ParseJWK(j)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID || back.Alg != RS256 || back.Private != nil || !back.Public.(*rsa.PublicKey).Equal(k.Public) {
		t.Errorf("ParseJWK = %s %s (private %v), want the key the JWK was made of", back.ID, back.Alg, back.Private != nil)
	}

	b64 := base64.RawURLEncoding.EncodeToString
	with := func(change func(*JWK)) JWK {
		c := j
		change(&c)
		return c
	}
	private := "c2VjcmV0"
	num := func(n *big.Int) string { return b64(n.Bytes()) }
	one := big.NewInt(1)
	small, err := rsa.GenerateKey(randReader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	n := k.Public.(*rsa.PublicKey).N
	for _, tt := range []struct {
		name string
		jwk  JWK
	}{
		{"with d", with(func(j *JWK) { j.D = &private })},
		{"with p", with(func(j *JWK) { j.P = &private })},
		{"with q", with(func(j *JWK) { j.Q = &private })},
		{"with dp", with(func(j *JWK) { j.DP = &private })},
		{"with dq", with(func(j *JWK) { j.DQ = &private })},
		{"with qi", with(func(j *JWK) { j.QI = &private })},
		{"with oth", with(func(j *JWK) { raw := json.RawMessage(`[]`); j.Oth = &raw })},
		{"no kid", with(func(j *JWK) { j.Kid = "" })},
		{"use enc", with(func(j *JWK) { j.Use = "enc" })},
		{"no alg", with(func(j *JWK) { j.Alg = "" })},
		{"RS384", with(func(j *JWK) { j.Alg = "RS384" })},
		{"PS256", with(func(j *JWK) { j.Alg = "PS256" })},
		{"RSA with EdDSA", with(func(j *JWK) { j.Alg = EdDSA })},
		{"RSA with a crv", with(func(j *JWK) { j.Crv = "P-256" })},
		{"RSA with an x", with(func(j *JWK) { j.X = j.N })},
		{"no n", with(func(j *JWK) { j.N = "" })},
		{"no e", with(func(j *JWK) { j.E = "" })},
		{"e = 3", with(func(j *JWK) { j.E = "Aw" })},
		{"e = 65537 with a leading zero", with(func(j *JWK) { j.E = "AAEAAQ" })},
		{"e = 2^31 - 1", with(func(j *JWK) { j.E = "f____w" })},
		{"e padded", with(func(j *JWK) { j.E = "AQAB=" })},
		{"n of 1024 bits", with(func(j *JWK) { j.N = num(small.N) })},
		{"n of 2047 bits", with(func(j *JWK) { j.N = num(new(big.Int).Add(new(big.Int).Lsh(one, 2046), one)) })},
		{"n of 4097 bits", with(func(j *JWK) { j.N = num(new(big.Int).Add(new(big.Int).Lsh(one, 4096), one)) })},
		{"n even", with(func(j *JWK) { j.N = num(new(big.Int).Lsh(one, 2047)) })},
		{"n with a leading zero", with(func(j *JWK) { j.N = b64(append([]byte{0}, n.Bytes()...)) })},
		{"n padded", with(func(j *JWK) { j.N += "=" })},
		{"n in the standard alphabet", with(func(j *JWK) { j.N = base64.RawStdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, n.Bytes()[2:]...)) })},
		{"n not base64", with(func(j *JWK) { j.N = "*" + j.N[1:] })},
		{"OKP with an n", func() JWK { e, _ := mustKey(t, EdDSA).PublicJWK(); e.N = j.N; return e }()},
		{"EC with an e", func() JWK { e, _ := mustKey(t, ES256).PublicJWK(); e.E = j.E; return e }()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := ParseJWK(tt.jwk); err == nil {
				t.Errorf("ParseJWK = %s %s, want an error", k.ID, k.Alg)
			}
		})
	}

	// A JWK in JSON with a private member is refused too: decoding keeps
	// every member of RFC 7518 section 6.3.2.
	for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "oth"} {
		raw, _ := json.Marshal(map[string]any{"kty": "RSA", "kid": "r", "alg": RS256, "use": "sig", "n": j.N, "e": j.E, member: "x"})
		var parsed JWK
		if err := json.Unmarshal(raw, &parsed); err == nil {
			if _, err := ParseJWK(parsed); err == nil {
				t.Errorf("a JWK with %q: accepted", member)
			}
		}
	}
}

// Access tokens are never RS256: a Manager refuses RSA keys for signing
// and for verifying, and RS256 tokens.
func TestAccessTokensRefuseRSAKeys(t *testing.T) {
	k := mustKey(t, RS256)
	pub := Key{ID: k.ID, Alg: k.Alg, Public: k.Public}
	for name, ks := range map[string]KeySet{
		"signing":   {Signing: k},
		"verifying": {Verify: []Key{pub}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(newClock(t0))
			cfg.Secret, cfg.Keys = nil, &ks
			if _, err := New(cfg); err == nil {
				t.Error("New with an RSA key succeeded")
			}
			m, _ := keysManager(t, mustKey(t, EdDSA))
			if err := m.SetKeys(ks); err == nil {
				t.Error("SetKeys with an RSA key succeeded")
			}
		})
	}
	m, _ := keysManager(t, mustKey(t, EdDSA))
	raw := sign(t, jwt.SigningMethodRS256, k.Private, map[string]any{"kid": k.ID}, goodClaims())
	if _, err := m.Verify(raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("an RS256 access token: %v", err)
	}
}
