package resource

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/token"
)

// Timing and bounds of the fetches.
const (
	defaultRefetch   = 10 * time.Second
	defaultRefresh   = 5 * time.Minute // without a max-age
	minRefresh       = time.Minute
	maxRefresh       = time.Hour
	retryRefresh     = 30 * time.Second // after a failed refresh
	fetchTimeout     = 10 * time.Second
	maxMetadataBytes = 64 << 10
	maxJWKSBytes     = 256 << 10

	// leeway is the clock skew allowed on exp, nbf and iat, as rolegate
	// allows it.
	leeway = 30 * time.Second
	// maxHeaderLen bounds the JOSE header read for its kid; rolegate's are
	// under 100 bytes.
	maxHeaderLen = 1 << 10
)

// WellKnownPath is where rolegate serves its RFC 8414 metadata, under
// Config.RolegateURL.
const WellKnownPath = "/.well-known/oauth-authorization-server"

// Verifier verifies rolegate's access tokens with the public keys of its
// JWKS, as gate.Verifier; it is safe for concurrent use.
//
// It keeps the keys current two ways. It fetches the JWKS again in the
// background every Config.RefreshInterval (by default the JWKS's own
// max-age), so it has a new key before rolegate signs with it (a new key is
// published 6 minutes before it signs; the JWKS may be cached for 5), and
// a key rolegate withdraws verifies no more tokens (but those it has
// verified already, until they expire). And a token whose kid it does not
// know makes it fetch the JWKS at once, then verify again, at most once
// per Config.RefetchInterval whatever the tokens say: a key the background
// fetches missed (one failed, or rolegate started on a fresh database)
// costs a request's wait rather than minutes of 401s, while made-up kids
// cost rolegate one request per interval. When a fetch fails the keys
// known are kept.
//
// The kid of a token's header is only ever a key into the keys fetched
// from the jwks_uri found at start: a URL a token names (jku, x5u) is
// never fetched, and an embedded key (jwk, x5c) never used.
type Verifier struct {
	tokens  *token.Manager
	revoked *revocation.List                // nil with Config.IgnoreRevocations
	feed    *follower                       // of the revocation log; nil with Config.IgnoreRevocations
	creds   *credentials                    // the machine client's, for the feeds; nil without Config.ClientID
	stream  *http.Client                    // the feeds' streams, bounded by their context only
	kids    atomic.Pointer[map[string]bool] // the kids tokens verify with
	jwksURL string
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
	ctx     context.Context // bounds the fetches a Verify makes
	refetch time.Duration
	refresh time.Duration // 0: the JWKS's max-age

	mu          sync.Mutex // one fetch at a time, in order
	lastRefetch time.Time  // of the last fetch for an unknown kid
	maxAge      time.Duration
}

// NewVerifier returns a Verifier of the tokens rolegate at cfg.RolegateURL
// issues for cfg.Audience (cfg.Spec and the body limits are unused). It
// fails if the metadata or the JWKS cannot be read, if the jwks_uri or the
// token_endpoint is on another origin than RolegateURL, if the JWKS holds
// no key it can use, or, unless cfg.IgnoreRevocations, if it has no client
// credentials or cannot take rolegate's revocation snapshot with them. It
// refreshes the keys and follows the revocation feed until ctx ends.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	v.start(ctx)
	return v, nil
}

// start refreshes the keys and follows the revocation feed until ctx ends.
func (v *Verifier) start(ctx context.Context) {
	go v.follow(ctx)
	if v.feed != nil {
		go v.feed.follow(ctx)
	}
}

// Ready returns nil while the Verifier follows rolegate's revocation feed
// (always with Config.IgnoreRevocations), or why it does not: rolegate
// cannot be reached, the stream broke and is not back, or it has not
// caught up since. A service answers 503 on its readiness probe then:
// tokens revoked meanwhile would still pass here.
func (v *Verifier) Ready() error {
	if v.feed == nil {
		return nil
	}
	return v.feed.Err()
}

// newVerifier is NewVerifier without the background refresh.
func newVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	base, err := baseURL(cfg.RolegateURL)
	if err != nil {
		return nil, err
	}
	if cfg.Audience == "" {
		return nil, errors.New("resource: no audience: set it to rolegate's ROLEGATE_JWT_AUDIENCE")
	}
	if cfg.RefetchInterval < 0 || cfg.RefreshInterval < 0 {
		return nil, errors.New("resource: negative interval")
	}
	client := &http.Client{Timeout: fetchTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	// A redirect could lead anywhere; the keys come from where the
	// metadata says, or not at all.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v := &Verifier{
		client:  client,
		logger:  cmp.Or(cfg.Logger, slog.Default()),
		now:     cfg.Now,
		ctx:     ctx,
		refetch: cmp.Or(cfg.RefetchInterval, defaultRefetch),
		refresh: cfg.RefreshInterval,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.ClientID == "" && !cfg.IgnoreRevocations {
		return nil, errors.New("resource: no ClientID: the revocation feed needs a machine client holding the role " + FeedRole + " (or set IgnoreRevocations, and revoked tokens pass until they expire)")
	}
	issuer, jwksURL, tokenURL, err := v.discover(ctx, base)
	if err != nil {
		return nil, err
	}
	v.jwksURL = jwksURL
	v.tokens, err = token.New(token.Config{
		Keys:     &token.KeySet{},
		Issuer:   issuer,
		Audience: cfg.Audience,
		TTL:      time.Minute, // unused: this Manager only verifies
		Leeway:   leeway,
		Now:      v.now,
	})
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	v.kids.Store(&map[string]bool{})
	n, err := v.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("resource: the JWKS at %s holds no EdDSA or ES256 key: does rolegate sign with HS256 (ROLEGATE_JWT_SECRET)? Its tokens cannot be verified elsewhere", jwksURL)
	}
	v.logger.Info("rolegate's keys loaded", "issuer", issuer, "jwks_uri", jwksURL, "keys", n)
	if cfg.ClientID == "" {
		v.logger.Warn("rolegate's revocations are ignored: a revoked token passes here until it expires")
		return v, nil
	}
	// Fail closed: no service without the revocations in force.
	if tokenURL == "" {
		return nil, fmt.Errorf("resource: rolegate's metadata names no token_endpoint, which the revocation feed needs")
	}
	stream := *client
	stream.Timeout = 0 // the stream lasts; its context and silence end it
	v.stream = &stream
	v.creds = &credentials{client: client, tokenURL: tokenURL, clientID: cfg.ClientID, clientSecret: cfg.ClientSecret}
	v.revoked = revocation.New(v.now)
	revoked := &revocationLog{list: v.revoked, creds: v.creds, snapshotURL: base.JoinPath(SnapshotPath).String(), logger: v.logger}
	v.feed = newFollower("revocation feed", base.JoinPath(StreamPath).String(), revoked, v.creds, v.stream, v.logger)
	if err := revoked.snapshot(ctx); err != nil {
		return nil, err
	}
	v.feed.heard = time.Now() // the stream resumes from the snapshot
	v.logger.Info("rolegate's revocations loaded", "seq", revoked.last)
	return v, nil
}

// Verify checks raw and returns its claims, as token.Manager.Verify does,
// then refuses it, with an error wrapping token.ErrInvalid and
// revocation.ErrRevoked, if rolegate revoked it; a token whose kid is
// unknown may first make it fetch the keys again.
func (v *Verifier) Verify(raw string) (*token.Claims, error) {
	c, err := v.verify(raw)
	if err != nil {
		return nil, err
	}
	if v.revoked != nil && v.revoked.Revoked(c) {
		return nil, errRevoked
	}
	return c, nil
}

var errRevoked = fmt.Errorf("%w: %w", token.ErrInvalid, revocation.ErrRevoked)

func (v *Verifier) verify(raw string) (*token.Claims, error) {
	c, err := v.tokens.Verify(raw)
	if err == nil {
		return c, nil
	}
	kid := headerKID(raw)
	if kid == "" || v.knows(kid) || !v.refetchFor(kid) {
		return nil, err
	}
	return v.tokens.Verify(raw)
}

func (v *Verifier) knows(kid string) bool { return (*v.kids.Load())[kid] }

// refetchFor fetches the JWKS for a token of kid unless a fetch for an
// unknown kid happened within the refetch interval, and reports whether
// kid is known now.
func (v *Verifier) refetchFor(kid string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.knows(kid) { // fetched while this request waited
		return true
	}
	now := v.now()
	if !v.lastRefetch.IsZero() && now.Before(v.lastRefetch.Add(v.refetch)) {
		return false
	}
	v.lastRefetch = now
	v.logger.Debug("fetching rolegate's keys for an unknown kid", "kid", kid)
	if _, err := v.fetch(v.ctx); err != nil {
		v.logger.Warn("rolegate's keys: fetch for an unknown kid failed; keeping the keys known", "err", err)
		return false
	}
	return v.knows(kid)
}

// follow fetches the keys again every refresh interval until ctx ends.
func (v *Verifier) follow(ctx context.Context) {
	t := time.NewTimer(v.nextRefresh())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.mu.Lock()
		_, err := v.fetch(ctx)
		v.mu.Unlock()
		next := v.nextRefresh()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			v.logger.Warn("rolegate's keys: refresh failed; keeping the keys known", "err", err, "retry_in", min(next, retryRefresh))
			next = min(next, retryRefresh)
		}
		t.Reset(next)
	}
}

// nextRefresh is the time until the next background fetch.
func (v *Verifier) nextRefresh() time.Duration {
	if v.refresh > 0 {
		return v.refresh
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.maxAge <= 0 {
		return defaultRefresh
	}
	return min(max(v.maxAge, minRefresh), maxRefresh)
}

// discover reads rolegate's metadata under base: the issuer, the JWKS URL
// and the token endpoint ("" if it names none), which must be on base's
// origin: the client's secret goes nowhere else.
func (v *Verifier) discover(ctx context.Context, base *url.URL) (issuer, jwksURL, tokenURL string, err error) {
	u := base.JoinPath(WellKnownPath).String()
	var m struct {
		Issuer        string `json:"issuer"`
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if _, err := v.get(ctx, u, maxMetadataBytes, &m); err != nil {
		return "", "", "", fmt.Errorf("resource: rolegate's metadata: %w", err)
	}
	if m.Issuer == "" {
		return "", "", "", fmt.Errorf("resource: rolegate's metadata at %s names no issuer", u)
	}
	j, err := url.Parse(m.JWKSURI)
	switch {
	case m.JWKSURI == "":
		return "", "", "", fmt.Errorf("resource: rolegate's metadata at %s names no jwks_uri", u)
	case err != nil || j.User != nil || j.Fragment != "" || !sameOrigin(base, j):
		return "", "", "", fmt.Errorf("resource: rolegate's metadata names jwks_uri %q, not on %s's origin: refused", m.JWKSURI, base.Redacted())
	}
	if m.TokenEndpoint == "" {
		return m.Issuer, j.String(), "", nil
	}
	t, err := url.Parse(m.TokenEndpoint)
	if err != nil || t.User != nil || t.Fragment != "" || !sameOrigin(base, t) {
		return "", "", "", fmt.Errorf("resource: rolegate's metadata names token_endpoint %q, not on %s's origin: refused", m.TokenEndpoint, base.Redacted())
	}
	return m.Issuer, j.String(), t.String(), nil
}

// fetch reads the JWKS and makes its usable keys the ones tokens verify
// with, returning how many there are. The caller holds v.mu, but for the
// first fetch.
func (v *Verifier) fetch(ctx context.Context) (int, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	header, err := v.get(ctx, v.jwksURL, maxJWKSBytes, &set)
	if err != nil {
		return 0, fmt.Errorf("resource: rolegate's JWKS: %w", err)
	}
	if set.Keys == nil {
		return 0, fmt.Errorf("resource: rolegate's JWKS at %s has no keys member", v.jwksURL)
	}
	var keys []token.Key
	seen := map[string]int{}
	for _, raw := range set.Keys {
		var j token.JWK
		if err := json.Unmarshal(raw, &j); err != nil {
			v.logger.Warn("rolegate's JWKS: a key that is not a JWK skipped", "err", err)
			continue
		}
		if j.Use != "sig" {
			v.logger.Warn("rolegate's JWKS: a key skipped: its use is not sig", "kid", j.Kid, "use", j.Use)
			continue
		}
		k, err := token.ParseJWK(j)
		if err != nil {
			v.logger.Warn("rolegate's JWKS: a key skipped", "err", err)
			continue
		}
		if k.Alg != token.EdDSA && k.Alg != token.ES256 {
			// An RS256 key signs rolegate's id tokens, which share the
			// JWKS; it never verifies an access token.
			v.logger.Debug("rolegate's JWKS: a key skipped: access tokens are not signed with its alg", "kid", k.ID, "alg", k.Alg)
			continue
		}
		seen[k.ID]++
		keys = append(keys, k)
	}
	kids := map[string]bool{}
	usable := keys[:0]
	for _, k := range keys {
		if seen[k.ID] > 1 { // which one would a token mean?
			v.logger.Warn("rolegate's JWKS: keys sharing a kid skipped", "kid", k.ID)
			continue
		}
		kids[k.ID] = true
		usable = append(usable, k)
	}
	if err := v.tokens.SetKeys(token.KeySet{Verify: usable}); err != nil {
		return 0, fmt.Errorf("resource: %w", err)
	}
	v.kids.Store(&kids)
	v.maxAge = maxAge(header.Get("Cache-Control"))
	if len(usable) == 0 {
		v.logger.Warn("rolegate's JWKS holds no usable key: every token is refused", "jwks_uri", v.jwksURL)
	}
	return len(usable), nil
}

// get fetches u, which must answer 200 with a JSON body of at most limit
// bytes, into dst, and returns the response's header.
func (v *Verifier) get(ctx context.Context, u string, limit int64, dst any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: the body is over %d bytes", u, limit)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return nil, fmt.Errorf("GET %s: not the JSON expected: %w", u, err)
	}
	return resp.Header, nil
}

// headerKID returns the kid of raw's JOSE header, or "" if it has none or
// the header cannot be read. Nothing else of the header is looked at.
func headerKID(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > maxHeaderLen {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return ""
	}
	return h.Kid
}

// maxAge returns the max-age directive of a Cache-Control header, or 0.
func maxAge(cacheControl string) time.Duration {
	for d := range strings.SplitSeq(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		if strings.EqualFold(name, "max-age") {
			if n, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}

// baseURL checks rolegate's base URL: absolute http or https, without
// credentials, query or fragment.
func baseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil: // not quoted: it holds a password
		return nil, errors.New("resource: rolegate's URL must not hold credentials")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("resource: rolegate's URL %q is not an http or https base URL such as https://auth.example.com", s)
	}
	return u, nil
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}
