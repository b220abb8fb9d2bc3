package token

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// typIDToken is the JOSE "typ" of id tokens. OpenID Connect names none;
// "JWT" is RFC 7519's (section 5.1), and it differs from the access
// tokens' at+jwt, so that neither passes for the other (RFC 8725 section
// 3.11).
const typIDToken = "JWT"

// idAlgs are the algorithms of id tokens: RS256, which every OpenID
// provider must offer (OpenID Connect Core 1.0 section 15.1), ES256 and
// EdDSA.
var idAlgs = []string{RS256, ES256, EdDSA}

// IDConfig configures [IDTokens]. See [NewIDTokens] for the constraints on
// each field.
type IDConfig struct {
	// Keys are the id-token keys (RS256, ES256 or EdDSA), which SetKeys
	// replaces as they rotate: a key set of their own, never the access
	// tokens'.
	Keys   *KeySet
	Issuer string           // iss of issued id tokens, also required of hints
	TTL    time.Duration    // lifetime of issued id tokens; whole seconds, at least 1s
	Leeway time.Duration    // clock skew allowed on a hint's iat and nbf; 0 to 30s
	Now    func() time.Time // nil means time.Now (tests inject a clock)
}

// IDClaims are the claims of an id token (OpenID Connect Core 1.0 section
// 2).
type IDClaims struct {
	// Subject is sub: the user id, a positive decimal integer.
	Subject string
	// Audience is aud, the client id, and AuthorizedParty is azp, the
	// same client id; Issue takes an empty AuthorizedParty for Audience.
	Audience, AuthorizedParty string
	// AuthTime is auth_time: when the person last entered their password.
	AuthTime time.Time
	// Nonce is the authentication request's nonce; omitted when empty.
	Nonce string
	// SessionID is sid: the browser session the token was issued under.
	SessionID string
	// AMR is amr: how the person authenticated (RFC 8176), and acr
	// follows from it (ACR); both omitted when AMR is empty.
	AMR []string
	// Email is omitted when empty, EmailVerified (email_verified) when nil.
	Email         string
	EmailVerified *bool
	// Issuer (iss), IssuedAt (iat) and ExpiresAt (exp) are set by Issue,
	// which ignores the caller's, and read from the token by ParseHint.
	Issuer              string
	IssuedAt, ExpiresAt time.Time
}

// IDTokens signs OpenID Connect id tokens and verifies the id_token_hint
// of a logout request. It is safe for concurrent use.
type IDTokens struct {
	keys   atomic.Pointer[keyState]
	issuer string
	ttl    time.Duration
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewIDTokens validates cfg and returns IDTokens for it. It rejects a
// missing key set, a key that is not RS256, ES256 or EdDSA, an empty
// issuer, a TTL under one second (JWT times have one-second precision),
// and a leeway outside [0, 30s].
func NewIDTokens(cfg IDConfig) (*IDTokens, error) {
	switch {
	case cfg.Keys == nil:
		return nil, errors.New("token: id tokens need keys")
	case cfg.Issuer == "":
		return nil, errors.New("token: issuer must not be empty")
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("token: TTL must be at least 1s (JWT times are whole seconds), got %v", cfg.TTL)
	case cfg.Leeway < 0 || cfg.Leeway > maxLeeway:
		return nil, fmt.Errorf("token: leeway must be between 0 and %v, got %v", maxLeeway, cfg.Leeway)
	}
	t := &IDTokens{issuer: cfg.Issuer, ttl: cfg.TTL, leeway: cfg.Leeway, now: cfg.Now}
	if t.now == nil {
		t.now = time.Now
	}
	if err := t.SetKeys(*cfg.Keys); err != nil {
		return nil, err
	}
	// The claims are checked by ParseHint itself: the parser's validation
	// would refuse an expired hint, which logout must accept.
	t.parser = jwt.NewParser(jwt.WithValidMethods(idAlgs), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	return t, nil
}

// SetKeys replaces the keys: new id tokens are signed with ks.Signing from
// now on, and hints verify with ks.Verify (Signing is added if missing).
// Every key must be an RS256, ES256 or EdDSA key.
func (t *IDTokens) SetKeys(ks KeySet) error {
	st, err := newKeyState(ks, idAlgs, "id tokens")
	if err != nil {
		return err
	}
	t.keys.Store(st)
	return nil
}

// PublicKeys returns the public halves of the keys id tokens verify with,
// for the JWKS.
func (t *IDTokens) PublicKeys() []Key { return t.keys.Load().verify }

// Alg is the algorithm of newly issued id tokens.
func (t *IDTokens) Alg() string { return t.keys.Load().signing.Alg }

// TTL is the lifetime of the id tokens Issue makes.
func (t *IDTokens) TTL() time.Duration { return t.ttl }

// idPayload is the JWT claims set of an id token. Its times are
// numericDate, which must be JSON numbers; nbf is never issued, but a hint
// that has one is held to it.
type idPayload struct {
	Issuer          string       `json:"iss"`
	Subject         string       `json:"sub"`
	Audience        string       `json:"aud"`
	ExpiresAt       *numericDate `json:"exp"`
	IssuedAt        *numericDate `json:"iat"`
	NotBefore       *numericDate `json:"nbf,omitempty"`
	AuthTime        *numericDate `json:"auth_time"`
	Nonce           string       `json:"nonce,omitempty"`
	AuthorizedParty string       `json:"azp"`
	SessionID       string       `json:"sid"`
	AMR             []string     `json:"amr,omitempty"`
	ACR             string       `json:"acr,omitempty"`
	Email           string       `json:"email,omitempty"`
	EmailVerified   *bool        `json:"email_verified,omitempty"`
}

func (p *idPayload) GetExpirationTime() (*jwt.NumericDate, error) { return p.ExpiresAt.date(), nil }
func (p *idPayload) GetIssuedAt() (*jwt.NumericDate, error)       { return p.IssuedAt.date(), nil }
func (p *idPayload) GetNotBefore() (*jwt.NumericDate, error)      { return p.NotBefore.date(), nil }
func (p *idPayload) GetIssuer() (string, error)                   { return p.Issuer, nil }
func (p *idPayload) GetSubject() (string, error)                  { return p.Subject, nil }
func (p *idPayload) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{p.Audience}, nil }

// Issue returns a signed id token of c, under the header {"alg": the
// signing key's, "typ":"JWT", "kid": its kid}. It sets iss, iat = now
// (whole seconds) and exp = iat + TTL, writes aud as a single string, azp
// as the audience, and auth_time as a number of seconds. It refuses a sub
// that is not a positive decimal integer, and a token without aud,
// auth_time or sid, or whose azp is not its aud.
func (t *IDTokens) Issue(c IDClaims) (raw string, err error) {
	switch {
	case !positiveDecimal(c.Subject):
		return "", fmt.Errorf("token: sub must be a positive decimal integer, got %q", c.Subject)
	case c.Audience == "":
		return "", errors.New("token: an id token needs an audience (the client id)")
	case c.AuthorizedParty != "" && c.AuthorizedParty != c.Audience:
		return "", errors.New("token: azp must be the audience, the client the token is issued to")
	case c.AuthTime.IsZero():
		return "", errors.New("token: an id token needs auth_time")
	case c.SessionID == "":
		return "", errors.New("token: an id token needs a sid")
	}
	ks := t.keys.Load()
	if ks.signing.Private == nil {
		return "", errors.New("token: these IDTokens only verify")
	}
	iat := t.now().Truncate(time.Second)
	p := idPayload{
		Issuer:          t.issuer,
		Subject:         c.Subject,
		Audience:        c.Audience,
		ExpiresAt:       newNumericDate(iat.Add(t.ttl).Truncate(time.Second)),
		IssuedAt:        newNumericDate(iat),
		AuthTime:        newNumericDate(c.AuthTime.Truncate(time.Second)),
		Nonce:           c.Nonce,
		AuthorizedParty: c.Audience,
		SessionID:       c.SessionID,
		AMR:             c.AMR,
		ACR:             ACR(c.AMR),
		Email:           c.Email,
		EmailVerified:   c.EmailVerified,
	}
	tok := jwt.NewWithClaims(ks.method, &p)
	tok.Header["typ"] = typIDToken
	tok.Header["kid"] = ks.signing.ID
	if raw, err = tok.SignedString(ks.signing.Private); err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	if len(raw) > maxTokenLen {
		return "", fmt.Errorf("token: id token would be %d bytes, over the %d-byte limit", len(raw), maxTokenLen)
	}
	return raw, nil
}

// ParseHint verifies raw as the id_token_hint of an RP-initiated logout
// and returns its claims. The signature must be of a key of the id-token
// key set under that key's own algorithm, the header's typ JWT, iss the
// issuer, and iat (and nbf, if present) not in the future beyond the
// leeway; every claim Issue sets must be present. An expired token is
// accepted: OpenID Connect RP-Initiated Logout 1.0 section 2 lets a relying
// party send one, and a token stays verifiable only while its key is
// published. Any failure returns an error for which errors.Is(err,
// ErrInvalid) is true. Tokens longer than 8 KiB are refused unread.
func (t *IDTokens) ParseHint(raw string) (*IDClaims, error) {
	if raw == "" {
		return nil, errEmpty
	}
	if len(raw) > maxTokenLen {
		return nil, errTooLong
	}
	var p idPayload
	if _, err := t.parser.ParseWithClaims(raw, &p, t.key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, loggable(err))
	}
	latest := t.now().Add(t.leeway)
	switch {
	case p.Issuer != t.issuer:
		return nil, fmt.Errorf("%w: iss is not the issuer", ErrInvalid)
	case !positiveDecimal(p.Subject):
		return nil, fmt.Errorf("%w: sub is not a positive decimal integer", ErrInvalid)
	case p.Audience == "" || p.AuthorizedParty != p.Audience:
		return nil, fmt.Errorf("%w: aud missing, or azp other than aud", ErrInvalid)
	case p.SessionID == "":
		return nil, fmt.Errorf("%w: sid missing", ErrInvalid)
	case p.IssuedAt == nil || p.ExpiresAt == nil || p.AuthTime == nil:
		return nil, fmt.Errorf("%w: iat, exp or auth_time missing", ErrInvalid)
	case p.IssuedAt.After(latest) || p.NotBefore != nil && p.NotBefore.After(latest):
		return nil, fmt.Errorf("%w: not valid yet", ErrInvalid)
	}
	return &IDClaims{
		Subject:         p.Subject,
		Audience:        p.Audience,
		AuthorizedParty: p.AuthorizedParty,
		AuthTime:        p.AuthTime.Time,
		Nonce:           p.Nonce,
		SessionID:       p.SessionID,
		AMR:             p.AMR,
		Email:           p.Email,
		EmailVerified:   p.EmailVerified,
		Issuer:          p.Issuer,
		IssuedAt:        p.IssuedAt.Time,
		ExpiresAt:       p.ExpiresAt.Time,
	}, nil
}

// key is ParseHint's jwt.Keyfunc: it pins the algorithm to that of the key
// the header's kid names in the id-token key set, and the type to JWT.
func (t *IDTokens) key(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	k := t.keys.Load().byKID[kid]
	switch {
	case k == nil:
		return nil, errors.New("no id-token key has the header's kid")
	case tok.Method.Alg() != k.Alg:
		return nil, fmt.Errorf("signing method %s is not its key's %s", tok.Method.Alg(), k.Alg)
	}
	if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, typIDToken) {
		return nil, errors.New("header typ is not JWT")
	}
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("unsupported crit header")
	}
	return k.Public, nil
}

// positiveDecimal reports whether s is a positive integer written in
// decimal without sign or leading zeros, as a user id is in sub.
func positiveDecimal(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}
