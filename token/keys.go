package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// The signing algorithms: asymmetric keys, or a secret.
const (
	EdDSA = "EdDSA" // Ed25519 (RFC 8037)
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	HS256 = algHS256
)

// Key is an asymmetric key of a key set: the private half signs, the
// public half verifies tokens whose header names its ID as kid.
type Key struct {
	ID  string // kid
	Alg string // EdDSA or ES256: the only algorithm this key verifies
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

// GenerateKey returns a new key for alg with a random kid.
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
	default:
		return Key{}, fmt.Errorf("token: no such signing algorithm %q (want %s or %s)", alg, EdDSA, ES256)
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
	}
	return fmt.Errorf("token: key %s is not an %s key", k.ID, k.Alg)
}

// JWK is a public key as RFC 7517 writes it: never a private or symmetric
// key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
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
	default:
		return JWK{}, fmt.Errorf("token: key %s has no public JWK form", k.ID)
	}
	return j, nil
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
