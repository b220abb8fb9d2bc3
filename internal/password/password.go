// Package password hashes and verifies login passwords: argon2id in PHC form,
// plus bcrypt hashes imported from other apps (passlib's $2a$/$2b$/$2y$), on a
// bounded pool of workers so that a flood of logins cannot starve the rest of
// the API.
//
// New hashes are always argon2id, written in the PHC string format
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in base64 without padding, standard alphabet, as the
// reference implementation and passlib write them. [Verify] also accepts
// bcrypt hashes and reports that they should be replaced by an argon2id hash
// (rehash) once the password has matched.
//
// Stored hashes are parsed strictly, and the cost they may demand is bounded
// (see [ErrMalformedHash]), so that a crafted or corrupt row cannot make one
// verification eat the machine.
//
// bcrypt ignores every byte of the password past the 72nd. So that two
// passwords sharing their first 72 bytes are not both accepted, a password
// longer than 72 bytes never verifies against a bcrypt hash: such users must
// reset their password (argon2id has no such limit).
//
// Passwords longer than [MaxPasswordLen] bytes are refused: [Hash] returns
// [ErrPasswordTooLong] and [Verify] reports false without hashing anything.
//
// Errors never include the password or the hash.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // memory in KiB
	Time    uint32 // number of passes over the memory
	Threads uint8  // degree of parallelism (lanes)
	SaltLen uint32 // salt length in bytes
	KeyLen  uint32 // derived key length in bytes
}

// OWASP is OWASP's recommended argon2id configuration (Password Storage Cheat
// Sheet): m=19456 KiB (19 MiB), t=2, p=1; 16-byte salt, 32-byte key.
var OWASP = Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// MaxPasswordLen is the longest password, in bytes, that Hash accepts and
// Verify hashes.
const MaxPasswordLen = 4096

// Bounds on what an argon2id hash (stored or produced) may demand. A stored
// hash outside them is malformed; Params outside them are refused by Hash.
const (
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 16
	maxThreads = 16
	minKeyLen  = 16
	maxKeyLen  = 128
	minSaltLen = 8
	maxSaltLen = 64

	// maxBcryptCost bounds the cost of a stored bcrypt hash (2^cost rounds;
	// bcrypt allows up to 31, which would take days). Cost 16 is already
	// several seconds; passlib's default is 12.
	maxBcryptCost = 16

	// maxHashLen bounds the stored hash we are willing to parse at all.
	maxHashLen = 512
)

var (
	// ErrBusy is returned at once by a Pool when no worker is free and its
	// queue is full.
	ErrBusy = errors.New("password: all hashing workers are busy")

	// ErrMalformedHash is returned by Verify for a hash that is empty, of an
	// unknown scheme, not strictly in the expected format, or whose
	// parameters exceed the bounds: argon2id with m > 1 GiB (1048576 KiB),
	// m < 8*p, t == 0 or t > 16, p == 0 or p > 16, key length outside
	// 16..128 or salt length outside 8..64 bytes; bcrypt with cost > 16.
	ErrMalformedHash = errors.New("password: malformed hash")

	// ErrPasswordTooLong is returned by Hash for a password longer than
	// MaxPasswordLen bytes.
	ErrPasswordTooLong = errors.New("password: password too long")

	// ErrClosed is returned by a Pool's methods once the Pool is closed.
	ErrClosed = errors.New("password: pool closed")

	errInvalidParams = errors.New("password: invalid argon2id parameters")
)

const argonPrefix = "$argon2id$v=19$"

// b64 is the PHC encoding: standard alphabet, no padding, strict trailing
// bits. (It still skips CR and LF, which decodeB64 rejects.)
var b64 = base64.RawStdEncoding.Strict()

// validParams reports whether p is within the bounds a stored hash may demand.
func validParams(p Params) bool {
	return p.Threads >= 1 && p.Threads <= maxThreads &&
		p.Memory >= 8*uint32(p.Threads) && p.Memory <= maxMemory &&
		p.Time >= 1 && p.Time <= maxTime &&
		p.SaltLen >= minSaltLen && p.SaltLen <= maxSaltLen &&
		p.KeyLen >= minKeyLen && p.KeyLen <= maxKeyLen
}

// Hash returns "$argon2id$v=19$m=19456,t=2,p=1$<salt b64 raw std>$<key b64
// raw std>" (the PHC string format; base64 without padding, standard
// alphabet, as the reference implementation and passlib write it), with a
// fresh random salt of p.SaltLen bytes. It returns ErrPasswordTooLong for a
// password longer than MaxPasswordLen bytes, and an error if p is outside the
// bounds Verify accepts.
func Hash(pw string, p Params) (string, error) {
	if len(pw) > MaxPasswordLen {
		return "", ErrPasswordTooLong
	}
	if !validParams(p) {
		return "", errInvalidParams
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encode(p, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", argonPrefix,
		p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether pw matches hash, which is an argon2id PHC string or
// a bcrypt hash. rehash is true when the password matched but the hash should
// be replaced (bcrypt, or argon2id with parameters other than want).
//
// A mismatch is ok=false with a nil error. A hash that is empty, of an
// unknown scheme or not strictly well-formed gives ErrMalformedHash. A
// password longer than MaxPasswordLen bytes is reported as not matching
// without being hashed, and a password longer than 72 bytes never matches a
// bcrypt hash (bcrypt would ignore its tail).
func Verify(hash, pw string, want Params) (ok, rehash bool, err error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return verifyArgon2id(hash, pw, want)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return verifyBcrypt(hash, pw)
	default:
		return false, false, ErrMalformedHash
	}
}

func verifyArgon2id(hash, pw string, want Params) (ok, rehash bool, err error) {
	p, salt, key, err := parseArgon2id(hash)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordLen {
		return false, false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p != want, nil
}

// parseArgon2id parses "$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>"
// strictly and checks the parameters against the bounds.
func parseArgon2id(hash string) (Params, []byte, []byte, error) {
	var p Params
	if len(hash) > maxHashLen || !strings.HasPrefix(hash, argonPrefix) {
		return p, nil, nil, ErrMalformedHash
	}
	fields := strings.Split(hash[len(argonPrefix):], "$")
	if len(fields) != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	kv := strings.Split(fields[0], ",")
	if len(kv) != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	m, ok1 := parseParam(kv[0], "m=")
	t, ok2 := parseParam(kv[1], "t=")
	th, ok3 := parseParam(kv[2], "p=")
	if !ok1 || !ok2 || !ok3 || th > maxThreads {
		return p, nil, nil, ErrMalformedHash
	}
	salt, ok4 := decodeB64(fields[1], maxSaltLen)
	key, ok5 := decodeB64(fields[2], maxKeyLen)
	if !ok4 || !ok5 {
		return p, nil, nil, ErrMalformedHash
	}
	p = Params{Memory: m, Time: t, Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if !validParams(p) {
		return Params{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}

// parseParam parses name followed by a canonical decimal number (no sign, no
// leading zero, at most 7 digits: every bound fits).
func parseParam(s, name string) (uint32, bool) {
	digits, found := strings.CutPrefix(s, name)
	if !found || len(digits) == 0 || len(digits) > 7 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// decodeB64 decodes canonical unpadded standard base64 of at most maxLen
// bytes.
func decodeB64(s string, maxLen int) ([]byte, bool) {
	if len(s) == 0 || len(s) > b64.EncodedLen(maxLen) {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	// Re-encoding rejects what the decoder tolerates (CR, LF).
	if err != nil || b64.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// validBcrypt reports whether hash is exactly "$2a$", "$2b$" or "$2y$", a
// two-digit cost within bounds, "$", and 53 characters of bcrypt's base64
// (22 of salt, 31 of hash).
func validBcrypt(hash string) bool {
	if len(hash) != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$' {
		return false
	}
	switch hash[2] {
	case 'a', 'b', 'y':
	default:
		return false
	}
	if hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' {
		return false
	}
	cost := int(hash[4]-'0')*10 + int(hash[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return false
	}
	for i := 7; i < len(hash); i++ {
		c := hash[i]
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func verifyBcrypt(hash, pw string) (ok, rehash bool, err error) {
	if !validBcrypt(hash) {
		return false, false, ErrMalformedHash
	}
	// bcrypt ignores bytes past 72: refuse rather than accept a password
	// that only shares its first 72 bytes with the real one.
	if len(pw) > 72 {
		return false, false, nil
	}
	switch err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); {
	case err == nil:
		return true, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		// bcrypt's own errors may quote bytes of the hash.
		return false, false, ErrMalformedHash
	}
}
