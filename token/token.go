// Package token issues and verifies rolegate's access tokens: HS256 JWTs
// (RFC 9068 profile, RFC 8725 practices) carrying the user id, email and
// roles, with a bounded cache of verified tokens so that verification costs
// next to nothing on the hot path. It also signs OpenID Connect id tokens
// ([IDTokens]), with keys of their own.
//
// Verification pins everything it can: the algorithm (HS256 only, both in the
// parser and in the key function), the JOSE type (at+jwt), the issuer, the
// audience, and the presence of exp, nbf, iat, sub, jti and roles. Every
// failure is reported as an error wrapping [ErrInvalid]; the rest of the
// error text is meant for logs only and never contains the token or the key.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// typAccessToken is the JOSE "typ" of RFC 9068 access tokens.
	typAccessToken = "at+jwt"
	// typAccessTokenMedia is the full media type form RFC 9068 also allows.
	typAccessTokenMedia = "application/at+jwt"

	algHS256 = "HS256"

	// maxTokenLen is the longest raw token Verify will look at.
	maxTokenLen = 8 << 10

	minSecretLen     = 32
	maxLeeway        = 30 * time.Second
	defaultCacheSize = 10000
	cacheShards      = 16
)

// ErrInvalid is the error every verification failure is or wraps. Callers
// should show clients nothing more than the fact that the token was rejected.
var ErrInvalid = errors.New("token: invalid")

// Pre-built errors for the cheap rejections, so that they do not allocate.
var (
	errEmpty   = fmt.Errorf("%w: empty token", ErrInvalid)
	errTooLong = fmt.Errorf("%w: token longer than %d bytes", ErrInvalid, maxTokenLen)
)

// Subject is whom a token is issued to.
type Subject struct {
	UserID int64 // positive, for a person; or
	// ClientID names a machine client: sub and client_id (RFC 9068
	// section 2.2), no email.
	ClientID string
	// Client is the client a person's token is issued to (client_id, RFC
	// 9068 section 2.2); unused for a machine client's.
	Client string
	Email  string
	// EmailVerified says whether the person proved they receive mail at
	// Email (email_verified, as OpenID Connect Core section 5.1 has it).
	EmailVerified bool
	Roles         []string
	// SessionID is the session the token belongs to (sid); empty for none.
	SessionID string
	// Version is the user's token version when the token is issued (ver):
	// a token older than the version a replica knows of is refused.
	Version int64
	// AMR is how the person authenticated (RFC 8176: pwd, otp, hwk, swk,
	// mfa); the token carries it as amr, acr (ACR of it) and AuthTime as
	// auth_time. Unused for a machine client's token.
	AMR      []string
	AuthTime time.Time
}

// The assurance levels of a person's sign-in, the acr values of tokens:
// a password (or one factor), or more than one factor.
const (
	ACRPassword = "urn:rolegate:acr:pwd"
	ACRMFA      = "urn:rolegate:acr:mfa"
)

// ACR is the assurance level of a sign-in by the methods amr: ACRMFA when
// they include mfa (RFC 8176: more than one factor), ACRPassword
// otherwise, and "" for none.
func ACR(amr []string) string {
	if len(amr) == 0 {
		return ""
	}
	if slices.Contains(amr, "mfa") {
		return ACRMFA
	}
	return ACRPassword
}

// Claims is what a verified token says about its holder.
//
// A *Claims returned by [Manager.Verify] may be shared with other callers
// through the cache of verified tokens: callers must treat it, including the
// Roles slice, as read-only.
type Claims struct {
	UserID   int64  // from sub (a decimal string in the token); 0 for a client
	ClientID string // from client_id when it is also sub (a machine client); "" for a person
	Client   string // from client_id: the client the token was issued to; "" for a person's token from before client_id
	Email    string // from email
	// EmailVerified is from email_verified; false when absent.
	EmailVerified bool
	Roles         []string  // from roles; never nil after Verify
	ID            string    // jti
	IssuedAt      time.Time // iat
	ExpiresAt     time.Time // exp
	SessionID     string    // sid; empty for a token of no session
	Version       int64     // ver; 0 when absent
	// AMR, ACR and AuthTime are from amr, acr and auth_time: how and when
	// the person authenticated. A person's token from before them has
	// none, and so meets no acr requirement.
	AMR      []string
	ACR      string
	AuthTime time.Time
}

// HasAnyRole reports whether c holds at least one of roles. It does not
// allocate. A nil c holds no role.
func (c *Claims) HasAnyRole(roles []string) bool {
	if c == nil {
		return false
	}
	for _, want := range roles {
		for _, have := range c.Roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// Config configures a [Manager]. See [New] for the constraints on each field.
type Config struct {
	// Secret is the HS256 key, at least 32 bytes (copied by New); or
	Secret []byte
	// Keys are the asymmetric keys (EdDSA, ES256), which SetKeys replaces
	// as they rotate. Exactly one of Secret and Keys is set.
	Keys      *KeySet
	Issuer    string           // iss of issued tokens, also required on verify
	Audience  string           // aud of issued tokens, also required on verify
	TTL       time.Duration    // lifetime of issued tokens; whole seconds, at least 1s
	Leeway    time.Duration    // clock skew allowed on exp/nbf/iat; 0 to 30s
	CacheSize int              // max verified tokens kept; 0 means 10000; negative disables the cache
	Now       func() time.Time // nil means time.Now (tests inject a clock)
}

// Manager issues and verifies access tokens. It is safe for concurrent use.
type Manager struct {
	secret   []byte // HS256; nil when keys are used
	keys     atomic.Pointer[keyState]
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
	keyFunc  jwt.Keyfunc
	cache    *cache // nil when disabled

	// sigChecks counts tokens handed to signature verification (that is,
	// every call of keyFunc that returned the key). Tests use it to prove
	// that cache hits do no signature work.
	sigChecks atomic.Int64
}

// New validates cfg and returns a Manager for it. It rejects a secret
// shorter than 32 bytes, an empty issuer or audience, a TTL under one second
// (JWT times have one-second precision), and a leeway outside [0, 30s].
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Keys != nil && len(cfg.Secret) > 0:
		return nil, errors.New("token: a secret or keys, not both")
	case cfg.Keys == nil && len(cfg.Secret) < minSecretLen:
		return nil, fmt.Errorf("token: secret must be at least %d bytes, got %d", minSecretLen, len(cfg.Secret))
	case cfg.Issuer == "":
		return nil, errors.New("token: issuer must not be empty")
	case cfg.Audience == "":
		return nil, errors.New("token: audience must not be empty")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("token: TTL must be positive, got %v", cfg.TTL)
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("token: TTL must be at least 1s (JWT times are whole seconds), got %v", cfg.TTL)
	case cfg.Leeway < 0 || cfg.Leeway > maxLeeway:
		return nil, fmt.Errorf("token: leeway must be between 0 and %v, got %v", maxLeeway, cfg.Leeway)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	m := &Manager{
		secret:   append([]byte(nil), cfg.Secret...),
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.TTL,
		leeway:   cfg.Leeway,
		now:      now,
	}
	methods := []string{algHS256}
	if cfg.Keys != nil {
		methods = accessAlgs
		m.secret = nil
		if err := m.SetKeys(*cfg.Keys); err != nil {
			return nil, err
		}
	}
	m.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	m.keyFunc = m.key
	switch size := cfg.CacheSize; {
	case size == 0:
		m.cache = newCache(defaultCacheSize, cacheShards)
	case size > 0:
		m.cache = newCache(size, cacheShards)
	}
	return m, nil
}

// payload is the JWT claims set of a rolegate access token.
//
// Its time claims shadow RegisteredClaims' with numericDate, which accepts
// only a JSON number, as RFC 7519 section 2 defines NumericDate (jwt's own
// also takes a string holding one); the jwt.Claims methods below hand them
// to the parser's validation.
type payload struct {
	jwt.RegisteredClaims
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	Email     string       `json:"email,omitempty"`
	// EmailVerified is set on a person's token only.
	EmailVerified *bool `json:"email_verified,omitempty"`
	// Roles is a pointer so that a missing or null "roles" claim can be told
	// apart from an empty array.
	Roles     *[]string    `json:"roles"`
	SessionID string       `json:"sid,omitempty"`
	Version   int64        `json:"ver,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	AMR       []string     `json:"amr,omitempty"`
	ACR       string       `json:"acr,omitempty"`
	AuthTime  *numericDate `json:"auth_time,omitempty"`
}

func (p *payload) GetExpirationTime() (*jwt.NumericDate, error) { return p.ExpiresAt.date(), nil }
func (p *payload) GetNotBefore() (*jwt.NumericDate, error)      { return p.NotBefore.date(), nil }
func (p *payload) GetIssuedAt() (*jwt.NumericDate, error)       { return p.IssuedAt.date(), nil }

// numericDate is a JWT NumericDate that must be a JSON number.
type numericDate struct{ jwt.NumericDate }

func newNumericDate(t time.Time) *numericDate { return &numericDate{*jwt.NewNumericDate(t)} }

// UnmarshalJSON refuses anything but a JSON number, a string holding one
// included.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errors.New("a NumericDate must be a JSON number")
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// TTL is the lifetime of the tokens Issue makes.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Issue returns a signed access token for s, and its expiry. The token
// carries sub (the user id in decimal), email, email_verified, amr, acr
// and auth_time (a person's, those of them set), roles (an empty array when there are none), sid and ver when set, iat = nbf = now (whole seconds),
// exp = iat + TTL, iss, aud and a random 128-bit jti, under the header
// {"alg":"HS256","typ":"at+jwt"}. The user id must be positive.
func (m *Manager) Issue(s Subject) (raw string, expiresAt time.Time, err error) {
	sub := strconv.FormatInt(s.UserID, 10)
	switch {
	case s.ClientID != "" && s.UserID == 0 && s.Email == "":
		sub = s.ClientID
	case s.ClientID != "":
		return "", time.Time{}, errors.New("token: a client's token has no user id or email")
	case s.UserID <= 0:
		return "", time.Time{}, fmt.Errorf("token: user id must be positive, got %d", s.UserID)
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails since Go 1.24
	roles := s.Roles
	if roles == nil {
		roles = []string{}
	}
	iat := m.now().Truncate(time.Second)
	exp := iat.Add(m.ttl).Truncate(time.Second)
	p := payload{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   m.issuer,
			Subject:  sub,
			Audience: jwt.ClaimStrings{m.audience},
			ID:       base64.RawURLEncoding.EncodeToString(id[:]),
		},
		ExpiresAt: newNumericDate(exp),
		NotBefore: newNumericDate(iat),
		IssuedAt:  newNumericDate(iat),
		Email:     s.Email,
		Roles:     &roles,
		SessionID: s.SessionID,
		Version:   s.Version,
		ClientID:  s.ClientID,
	}
	if s.ClientID == "" {
		p.ClientID = s.Client
		p.EmailVerified = &s.EmailVerified
		p.AMR, p.ACR = s.AMR, ACR(s.AMR)
		if !s.AuthTime.IsZero() {
			p.AuthTime = newNumericDate(s.AuthTime)
		}
	}
	if m.secret != nil {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, &p)
		t.Header["typ"] = typAccessToken
		raw, err = t.SignedString(m.secret)
	} else {
		ks := m.keys.Load()
		if ks.signing.Private == nil {
			return "", time.Time{}, errors.New("token: this Manager only verifies")
		}
		t := jwt.NewWithClaims(ks.method, &p)
		t.Header["typ"] = typAccessToken
		t.Header["kid"] = ks.signing.ID
		raw, err = t.SignedString(ks.signing.Private)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: signing: %w", err)
	}
	if len(raw) > maxTokenLen {
		return "", time.Time{}, fmt.Errorf("token: token would be %d bytes, over the %d-byte limit", len(raw), maxTokenLen)
	}
	return raw, exp, nil
}

// Verify checks raw and returns its claims. Any failure returns an error for
// which errors.Is(err, ErrInvalid) is true.
//
// Tokens that verify are cached (keyed by the exact raw string) until their
// exp, so verifying the same token again does no signature or JSON work and
// does not allocate. The returned *Claims may therefore be shared between
// callers: it must not be modified.
func (m *Manager) Verify(raw string) (*Claims, error) {
	if raw == "" {
		return nil, errEmpty
	}
	if len(raw) > maxTokenLen {
		return nil, errTooLong
	}
	if m.cache != nil {
		if c := m.cache.get(raw, m.now()); c != nil {
			return c, nil
		}
	}
	c, validFrom, err := m.verify(raw)
	if err != nil {
		return nil, err
	}
	if m.cache != nil {
		m.cache.put(raw, c, validFrom, c.ExpiresAt, m.now())
	}
	return c, nil
}

// CacheStats returns how many Verify calls were answered from the cache of
// verified tokens (hits) and how many had to verify the token in full
// (misses), since New; both are 0 when the cache is disabled.
func (m *Manager) CacheStats() (hits, misses uint64) {
	if m.cache == nil {
		return 0, 0
	}
	return m.cache.stats()
}

// verify fully verifies raw. validFrom is the earliest instant at which
// verification of raw would succeed (max(nbf, iat) - leeway); together with
// exp it bounds the window in which the result may be served from the cache.
func (m *Manager) verify(raw string) (c *Claims, validFrom time.Time, err error) {
	var p payload
	if _, err := m.parser.ParseWithClaims(raw, &p, m.keyFunc); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrInvalid, loggable(err))
	}
	// The parser has checked signature, exp, nbf, iss and aud (all required)
	// and iat if present; the rest is ours.
	// A person's sub is their id, in decimal; a machine client's is its
	// client_id, which is never all digits, and it has no email.
	var machine string
	userID, err := strconv.ParseInt(p.Subject, 10, 64)
	switch {
	case err == nil && userID > 0 && strconv.FormatInt(userID, 10) == p.Subject:
	case p.ClientID != "" && p.Subject == p.ClientID && p.Email == "" && p.EmailVerified == nil && p.AMR == nil && p.ACR == "" && p.AuthTime == nil:
		userID, machine = 0, p.ClientID
	case p.ClientID != "":
		return nil, time.Time{}, fmt.Errorf("%w: a client's token has sub other than client_id, or an email", ErrInvalid)
	default:
		return nil, time.Time{}, fmt.Errorf("%w: sub is not a positive decimal integer", ErrInvalid)
	}
	switch {
	case p.ID == "":
		return nil, time.Time{}, fmt.Errorf("%w: jti missing", ErrInvalid)
	case p.IssuedAt == nil:
		return nil, time.Time{}, fmt.Errorf("%w: iat missing", ErrInvalid)
	case p.Roles == nil:
		return nil, time.Time{}, fmt.Errorf("%w: roles missing", ErrInvalid)
	}
	roles := *p.Roles
	if roles == nil {
		roles = []string{}
	}
	validFrom = p.NotBefore.Time
	if p.IssuedAt.After(validFrom) {
		validFrom = p.IssuedAt.Time
	}
	c = &Claims{
		UserID:        userID,
		Email:         p.Email,
		EmailVerified: p.EmailVerified != nil && *p.EmailVerified,
		Roles:         roles,
		ID:            p.ID,
		IssuedAt:      p.IssuedAt.Time,
		ExpiresAt:     p.ExpiresAt.Time,
		SessionID:     p.SessionID,
		Version:       p.Version,
		ClientID:      machine,
		Client:        p.ClientID,
		AMR:           p.AMR,
		ACR:           p.ACR,
	}
	if p.AuthTime != nil {
		c.AuthTime = p.AuthTime.Time
	}
	return c, validFrom.Add(-m.leeway), nil
}

// loggable returns err from the jwt parser minus anything that may quote the
// token. Only malformed-token errors do (the JSON decoder quotes, e.g., a bad
// number literal, and the claims are decoded before the signature is
// checked), so for those it keeps jwt's own description ("token is
// malformed: could not JSON decode claim") and drops the decoder's detail.
func loggable(err error) error {
	if !errors.Is(err, jwt.ErrTokenMalformed) {
		return err
	}
	msg := err.Error()
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) == 2 && errs[0] == jwt.ErrTokenMalformed {
			msg = strings.TrimSuffix(msg, ": "+errs[1].Error())
		}
	}
	msg = strings.TrimPrefix(msg, jwt.ErrTokenMalformed.Error())
	msg = strings.TrimPrefix(msg, ": ")
	if msg == "" {
		return jwt.ErrTokenMalformed
	}
	return fmt.Errorf("%w: %s", jwt.ErrTokenMalformed, msg)
}

// key is the jwt.Keyfunc: it pins the algorithm (HS256 for a secret; for
// keys, the algorithm of the key the header's kid names) and the token type
// before handing out the secret or the public key.
func (m *Manager) key(t *jwt.Token) (any, error) {
	var key any = m.secret
	if m.secret == nil {
		kid, _ := t.Header["kid"].(string)
		k := m.keys.Load().byKID[kid]
		switch {
		case k == nil:
			return nil, errors.New("no key has the header's kid")
		case t.Method.Alg() != k.Alg:
			return nil, fmt.Errorf("signing method %s is not its key's %s", t.Method.Alg(), k.Alg)
		}
		key = k.Public
	} else if hm, ok := t.Method.(*jwt.SigningMethodHMAC); !ok || hm.Alg() != algHS256 {
		return nil, errors.New("signing method is not HS256")
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, typAccessToken) && !strings.EqualFold(typ, typAccessTokenMedia) {
		return nil, errors.New("header typ is not at+jwt")
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions we do not understand must be rejected.
		return nil, errors.New("unsupported crit header")
	}
	m.sigChecks.Add(1)
	return key, nil
}

// keyState is one immutable view of a Manager's keys.
type keyState struct {
	signing Key
	method  jwt.SigningMethod
	byKID   map[string]*Key
	verify  []Key
}

// SetKeys replaces the keys of a Manager made with Keys: new tokens are
// signed with ks.Signing from now on, and tokens verify with ks.Verify
// (Signing is added if missing). Verified tokens stay cached until they
// expire, whatever their key. Every key must be an EdDSA or ES256 key:
// RS256 keys sign id tokens (IDTokens), never access tokens.
func (m *Manager) SetKeys(ks KeySet) error {
	if m.secret != nil {
		return errors.New("token: SetKeys on a Manager with a secret")
	}
	st, err := newKeyState(ks, accessAlgs, "access tokens")
	if err != nil {
		return err
	}
	m.keys.Store(st)
	return nil
}

// accessAlgs are the algorithms of access tokens signed with keys.
var accessAlgs = []string{EdDSA, ES256}

// newKeyState checks ks, whose keys must all be of algs (the algorithms of
// what, for errors), and returns its view.
func newKeyState(ks KeySet, algs []string, what string) (*keyState, error) {
	st := &keyState{signing: ks.Signing, byKID: map[string]*Key{}}
	verify := ks.Verify
	if ks.Signing.ID != "" || ks.Signing.Private != nil {
		var err error
		if st.method, err = method(ks.Signing.Alg); err != nil {
			return nil, err
		}
		if ks.Signing.Private == nil {
			return nil, errors.New("token: the signing key has no private half")
		}
		verify = append([]Key{ks.Signing}, verify...)
	}
	for _, k := range verify {
		if !slices.Contains(algs, k.Alg) {
			return nil, fmt.Errorf("token: key %s is an %s key: %s are signed with %s", k.ID, k.Alg, what, strings.Join(algs, ", "))
		}
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if _, ok := st.byKID[k.ID]; ok {
			continue
		}
		pub := Key{ID: k.ID, Alg: k.Alg, Public: k.Public}
		st.byKID[k.ID] = &pub
		st.verify = append(st.verify, pub)
	}
	return st, nil
}

// PublicKeys returns the public halves of the keys tokens verify with; none
// for a Manager with a secret, whose key must never be published.
func (m *Manager) PublicKeys() []Key {
	if m.secret != nil {
		return nil
	}
	return m.keys.Load().verify
}

// Alg is the algorithm of newly issued tokens.
func (m *Manager) Alg() string {
	if m.secret != nil {
		return algHS256
	}
	return m.keys.Load().signing.Alg
}
