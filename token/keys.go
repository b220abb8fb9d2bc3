package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// The signing algorithms: asymmetric keys, or a secret. Access tokens are
// signed with EdDSA, ES256 or HS256; id tokens with RS256, ES256 or EdDSA.
const (
	EdDSA = "EdDSA" // Ed25519 (RFC 8037)
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 4096 bits
	HS256 = algHS256
)

// The sizes of the RSA keys accepted, in bits. GenerateKey makes the
// smallest (RFC 7518 section 3.3 requires at least 2048); the largest
// bounds the work a key from a JWKS can make each verification cost.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// rsaExponent is the only public exponent accepted, the one every library
// generates; another one is a sign of a key made by hand.
const rsaExponent = 65537

// Key is an asymmetric key of a key set: the private half signs, the
// public half verifies tokens whose header names its ID as kid.
type Key struct {
	ID  string // kid
	Alg string // EdDSA, ES256 or RS256: the only algorithm this key verifies
	// Private signs; nil for a key that only verifies.
	Private crypto.Signer
	Public  crypto.PublicKey
}

// KeySet is what a Manager signs and verifies with: Signing signs new
// tokens (a zero Signing makes a Manager that only verifies, as a service
// that trusts rolegate's JWKS needs), and a token verifies with the key of Verify its kid names, under
// that key's own algorithm only. A key set never holds a symmetric key:
// HS256 is a Manager built with a secret instead.
type KeySet struct {
	Signing Key
	Verify  []Key // Signing included
}

// GenerateKey returns a new key for alg (EdDSA, ES256, or RS256 for a
// 2048-bit RSA key) with a random kid.
func GenerateKey(alg string) (Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(nil)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), randReader)
	case RS256:
		priv, err = rsa.GenerateKey(randReader, minRSABits)
	default:
		return Key{}, fmt.Errorf("token: no such signing algorithm %q (want %s, %s or %s)", alg, EdDSA, ES256, RS256)
	}
	if err != nil {
		return Key{}, err
	}
	return Key{ID: newID(), Alg: alg, Private: priv, Public: priv.Public()}, nil
}

// method is the jwt signing method of an algorithm.
func method(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	case ES256:
		return jwt.SigningMethodES256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("token: no such signing algorithm %q", alg)
}

// checkKey verifies that k's public key is of its algorithm.
func checkKey(k Key) error {
	if k.ID == "" {
		return errors.New("token: a key needs a kid")
	}
	switch pub := k.Public.(type) {
	case ed25519.PublicKey:
		if k.Alg == EdDSA && len(pub) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Alg == ES256 && pub.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PublicKey:
		if k.Alg == RS256 && pub.E == rsaExponent && pub.N != nil && pub.N.Bit(0) == 1 &&
			pub.N.BitLen() >= minRSABits && pub.N.BitLen() <= maxRSABits {
			return nil
		}
	}
	return fmt.Errorf("token: key %s is not an %s key", k.ID, k.Alg)
}

// JWK is a public key as RFC 7517 writes it: never a private or symmetric
// key.
type JWK struct {
	Kty string `json:"kty"`
	// Crv, X and Y are an OKP or EC key's (RFC 8037, RFC 7518 section
	// 6.2.1).
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	// N and E are an RSA key's modulus and exponent (RFC 7518 section
	// 6.3.1).
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// D is the private member of an OKP, EC or RSA key, and P to Oth the
	// other private members of an RSA key (RFC 7518 section 6.3.2),
	// decoded only so that ParseJWK can refuse a JWK that carries one;
	// PublicJWK never sets them.
	D   *string          `json:"d,omitempty"`
	P   *string          `json:"p,omitempty"`
	Q   *string          `json:"q,omitempty"`
	DP  *string          `json:"dp,omitempty"`
	DQ  *string          `json:"dq,omitempty"`
	QI  *string          `json:"qi,omitempty"`
	Oth *json.RawMessage `json:"oth,omitempty"`
}

// private reports whether j carries a private member.
func (j JWK) private() bool {
	return j.D != nil || j.P != nil || j.Q != nil || j.DP != nil || j.DQ != nil || j.QI != nil || j.Oth != nil
}

// PublicJWK returns the public half of k as a JWK.
func (k Key) PublicJWK() (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := JWK{Kid: k.ID, Alg: k.Alg, Use: "sig"}
	switch pub := k.Public.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(pad(pub.X, size)), b64(pad(pub.Y, size))
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	default:
		return JWK{}, fmt.Errorf("token: key %s has no public JWK form", k.ID)
	}
	return j, nil
}

// ParseJWK returns the key that verifies tokens whose kid is j.Kid: an
// Ed25519 key (kty OKP, crv Ed25519, alg EdDSA), a P-256 key (kty EC,
// crv P-256, alg ES256) or an RSA key (kty RSA, alg RS256). It refuses any
// other combination (an alg is required: the key verifies under that
// algorithm only), a JWK without a kid, one whose use is other than sig,
// one that carries a private member, coordinates that are not the
// unpadded base64url of exactly their size, a point that is not on its
// curve, members of another kty, and an RSA key whose modulus is not the
// shortest big-endian encoding of an odd number of 2048 to 4096 bits or
// whose exponent is not 65537 (AQAB).
func ParseJWK(j JWK) (Key, error) {
	fail := func(format string, args ...any) (Key, error) {
		return Key{}, fmt.Errorf("token: JWK %q: "+format, append([]any{j.Kid}, args...)...)
	}
	switch {
	case j.Kid == "":
		return fail("no kid")
	case j.private():
		return fail("carries a private key")
	case j.Use != "" && j.Use != "sig":
		return fail("use %q is not sig", j.Use)
	}
	k := Key{ID: j.Kid, Alg: j.Alg}
	switch {
	case j.Kty != "RSA" && (j.N != "" || j.E != ""):
		return fail("an %s key has no n or e", j.Kty)
	case j.Kty == "OKP" && j.Crv == "Ed25519" && j.Alg == EdDSA:
		if j.Y != "" {
			return fail("an OKP key has no y")
		}
		x, err := coordinate(j.X, ed25519.PublicKeySize)
		if err != nil {
			return fail("x: %v", err)
		}
		if !onEd25519(x) {
			return fail("x is not a point of Ed25519")
		}
		k.Public = ed25519.PublicKey(x)
	case j.Kty == "EC" && j.Crv == "P-256" && j.Alg == ES256:
		x, err := coordinate(j.X, 32)
		if err != nil {
			return fail("x: %v", err)
		}
		y, err := coordinate(j.Y, 32)
		if err != nil {
			return fail("y: %v", err)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return fail("not a point of P-256")
		}
		k.Public = pub
	case j.Kty == "RSA" && j.Alg == RS256:
		if j.Crv != "" || j.X != "" || j.Y != "" {
			return fail("an RSA key has no crv, x or y")
		}
		n, err := base64.RawURLEncoding.Strict().DecodeString(j.N)
		switch {
		case err != nil:
			return fail("n: not unpadded base64url")
		case len(n) == 0 || n[0] == 0:
			return fail("n: not the shortest encoding of a number")
		}
		if j.E != "AQAB" {
			return fail("e: %q, want AQAB (65537)", j.E)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: rsaExponent}
		switch bits := pub.N.BitLen(); {
		case bits < minRSABits || bits > maxRSABits:
			return fail("n: %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		case pub.N.Bit(0) == 0:
			return fail("n: an even modulus")
		}
		k.Public = pub
	default:
		return fail("kty %q, crv %q and alg %q: want OKP, Ed25519 and %s, EC, P-256 and %s, or RSA and %s", j.Kty, j.Crv, j.Alg, EdDSA, ES256, RS256)
	}
	if err := checkKey(k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// coordinate decodes s, which must be the unpadded base64url encoding of
// exactly size bytes (RFC 7518 section 6.2.1.2, RFC 8037 section 2).
func coordinate(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	switch {
	case err != nil:
		return nil, errors.New("not unpadded base64url")
	case len(b) != size:
		return nil, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return b, nil
}

// The field and curve constant of Ed25519: p = 2^255 - 19 and
// d = -121665/121666 mod p.
var (
	ed25519P = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	ed25519D = func() *big.Int {
		inv := new(big.Int).ModInverse(big.NewInt(121666), ed25519P)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, ed25519P)
	}()
)

// onEd25519 reports whether b is the encoding of a point of Ed25519, as
// RFC 8032 section 5.1.3 decodes one: y below p, and x^2 = (y^2 - 1) /
// (d y^2 + 1) having a square root, which is not 0 if the sign bit is set.
// crypto/ed25519 does not check this until it verifies a signature.
func onEd25519(b []byte) bool {
	le := make([]byte, len(b))
	for i, c := range b {
		le[len(b)-1-i] = c
	}
	sign := le[0] >> 7
	le[0] &= 0x7f
	y := new(big.Int).SetBytes(le)
	if y.Cmp(ed25519P) >= 0 {
		return false
	}
	p := ed25519P
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Mul(ed25519D, y2)
	v.Add(v, big.NewInt(1)).Mod(v, p) // never 0: d is not a square mod p
	x2 := new(big.Int).Mul(u, new(big.Int).ModInverse(v, p))
	x2.Mod(x2, p)
	x := new(big.Int).ModSqrt(x2, p)
	return x != nil && (x.Sign() != 0 || sign == 0)
}

func pad(n *big.Int, size int) []byte {
	b := make([]byte, size)
	return n.FillBytes(b)
}

var randReader = rand.Reader

// newID returns 128 random bits, base64url-encoded.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}
