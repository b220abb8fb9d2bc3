package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rolegate/rolegate/gen/api"
)

const (
	// refreshBefore is how long before its expiry an access token is
	// renewed (at most half its lifetime).
	refreshBefore = 30 * time.Second
	// refreshTimeout bounds one refresh. A refresh outlives the request
	// that started it (see fly), so it needs a bound of its own.
	refreshTimeout = time.Minute
)

// Session is a logged-in session: it holds the access and refresh tokens
// and keeps them current. Requests through Client (or Do) to the server
// carry the access token. The session renews it with the refresh_token
// grant before sending a request when the token expires within 30 seconds
// (half its lifetime for a token shorter than a minute), by the expires_in
// /token answered, counted from when that request was sent. Otherwise, when
// a response is 401 with error="invalid_token" (the token expired, or the
// account's roles changed: the new token carries the new roles), it renews
// the token and retries the request once with the new one. A request
// causes at most one refresh, and concurrent requests that need one share
// it.
//
// When the server refuses the refresh (the session ended: logged out, signed
// out by an administrator, expired), the session forgets its tokens: the
// request that needed it gets its 401, and later requests go without a
// token (401 wherever one is needed) and never refresh. When the refresh
// fails otherwise (the network, a 503), the tokens are kept, the request
// gets its 401, and a later request tries again.
//
// A Session is safe for concurrent use.
type Session struct {
	origin     *url.URL // scheme and host the access token is sent to
	tokenPath  string   // /token and /token/revoke under the server URL:
	revokePath string   // requests there carry no access token
	base       api.HttpRequestDoer
	auth       *api.ClientWithResponses // /token and /token/revoke, through base
	client     *api.ClientWithResponses // through the session
	now        func() time.Time

	mu        sync.Mutex
	access    string
	refresh   string
	refreshAt time.Time // zero: no renewal before the server refuses the token
	flight    *flight   // the refresh under way, or nil
	ended     bool      // Logout: a refresh under way must not bring tokens back
}

// flight is one refresh, which every request that needs it waits for.
type flight struct{ done chan struct{} }

// Start logs in with the OAuth2 password grant and returns the session.
// opts configure the generated client, as for api.NewClientWithResponses:
// the session's requests, its refreshes and its revocation go through the
// HTTP client given with api.WithHTTPClient (http.DefaultClient's settings
// otherwise), and its request editors apply to all of them. A refused login
// is a *LoginError.
func Start(ctx context.Context, server, email, password string, opts ...api.ClientOption) (*Session, error) {
	return start(ctx, time.Now, server, email, password, nil, opts)
}

// StartWithSecondFactor is Start for an account that may have a second
// factor, which second gives when the server asks for it (see
// TokenWithSecondFactor).
func StartWithSecondFactor(ctx context.Context, server, email, password string, second SecondFactor, opts ...api.ClientOption) (*Session, error) {
	return start(ctx, time.Now, server, email, password, second, opts)
}

func start(ctx context.Context, now func() time.Time, server, email, password string, second SecondFactor, opts []api.ClientOption) (*Session, error) {
	s, err := newSession(now, server, opts)
	if err != nil {
		return nil, err
	}
	// The lifetime counts from before the request: the token cannot
	// expire before the session thinks it does.
	sent := now()
	tok, err := TokenWithSecondFactor(ctx, server, email, password, second, opts...)
	if err != nil {
		return nil, err
	}
	s.set(tok, sent)
	return s, nil
}

func newSession(now func() time.Time, server string, opts []api.ClientOption) (*Session, error) {
	// The generated client resolves the options: the server URL (which
	// api.WithBaseURL may replace) and the HTTP client.
	probe, err := api.NewClient(server, opts...)
	if err != nil {
		return nil, err
	}
	s := &Session{base: probe.Client, now: now}
	if s.origin, err = url.Parse(probe.Server); err != nil {
		return nil, err
	}
	tokenReq, err := api.NewCreateTokenRequestWithBody(probe.Server, "", nil)
	if err != nil {
		return nil, err
	}
	revokeReq, err := api.NewRevokeTokenRequestWithBody(probe.Server, "", nil)
	if err != nil {
		return nil, err
	}
	s.tokenPath, s.revokePath = tokenReq.URL.Path, revokeReq.URL.Path
	if s.auth, err = api.NewClientWithResponses(server, opts...); err != nil {
		return nil, err
	}
	if s.client, err = api.NewClientWithResponses(server, slices.Concat(opts, []api.ClientOption{api.WithHTTPClient(s)})...); err != nil {
		return nil, err
	}
	return s, nil
}

// Client returns the generated client, whose every request goes through
// the session (Do).
func (s *Session) Client() *api.ClientWithResponses { return s.client }

// Do sends an HTTP request as the session: a request to the server (other
// than to /token and /token/revoke) carries the access token, in place of
// any Authorization header it had, or none once the session has ended; a
// request elsewhere goes as it is. It renews the token as the Session
// documentation says. A request with a body is retried only if it has
// GetBody (http.NewRequest sets it for the generated client's bodies);
// otherwise its 401 is returned. Do implements api.HttpRequestDoer.
func (s *Session) Do(req *http.Request) (*http.Response, error) {
	if !s.authorizes(req) {
		return s.base.Do(req)
	}
	ctx := req.Context()
	access, renewed := s.token(ctx)
	resp, err := s.base.Do(withToken(req, req.Body, access))
	if err != nil || renewed || !invalidToken(resp) {
		return resp, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return resp, nil
	}
	next, ok := s.renew(ctx, access)
	if !ok {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	return s.base.Do(withToken(req, body, next))
}

// Logout ends the session on the server, revoking its refresh token (its
// access token if it has none) through /token/revoke, and forgets both
// tokens, whatever the answer: afterwards requests go without a token. It
// waits for a refresh under way first, so as to revoke the latest token.
// It returns an error if the revocation could not be sent or was refused,
// when the session may still be alive on the server (until it expires);
// after the session has ended, it does nothing and returns nil.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	for s.flight != nil {
		f := s.flight
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			s.mu.Lock()
			s.forget()
			s.ended = true
			s.mu.Unlock()
			return fmt.Errorf("rolegate: logout: waiting for a refresh: %w", ctx.Err())
		}
		s.mu.Lock()
	}
	tok, hint := s.refresh, "refresh_token"
	if tok == "" {
		tok, hint = s.access, "access_token"
	}
	s.forget()
	s.ended = true
	s.mu.Unlock()
	if tok == "" {
		return nil
	}
	resp, err := s.auth.RevokeTokenWithFormdataBodyWithResponse(ctx, api.RevokeTokenFormdataRequestBody{Token: &tok, TokenTypeHint: &hint})
	if err != nil {
		return fmt.Errorf("rolegate: logout: %w", err)
	}
	if resp.StatusCode() != http.StatusOK {
		code := ""
		if resp.JSON400 != nil {
			code = " " + string(resp.JSON400.Error)
		}
		return fmt.Errorf("rolegate: logout: /token/revoke answered %d%s", resp.StatusCode(), code)
	}
	return nil
}

// authorizes reports whether req should carry the access token.
func (s *Session) authorizes(req *http.Request) bool {
	u := req.URL
	return strings.EqualFold(u.Scheme, s.origin.Scheme) && strings.EqualFold(u.Host, s.origin.Host) &&
		u.Path != s.tokenPath && u.Path != s.revokePath
}

// token returns the access token to send, renewing it first when it is
// about to expire; renewed reports that a renewal was tried (whatever its
// outcome), so that the request does not try another.
func (s *Session) token(ctx context.Context) (access string, renewed bool) {
	s.mu.Lock()
	access = s.access
	due := s.refresh != "" && !s.refreshAt.IsZero() && !s.now().Before(s.refreshAt)
	s.mu.Unlock()
	if !due {
		return access, false
	}
	if next, ok := s.renew(ctx, access); ok {
		return next, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access, true // the old token if the refresh failed, none if it was refused
}

// renew returns an access token newer than sent, refreshing the session
// unless another request already did or is doing it. ok is false when there
// is none: the session has no refresh token, the refresh failed, or ctx
// ended while waiting.
func (s *Session) renew(ctx context.Context, sent string) (access string, ok bool) {
	s.mu.Lock()
	if s.access != sent { // renewed, or ended, since sent was sent
		access = s.access
		s.mu.Unlock()
		return access, access != ""
	}
	f := s.flight
	if f == nil {
		if s.refresh == "" {
			s.mu.Unlock()
			return "", false
		}
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.fly(context.WithoutCancel(ctx), f, s.refresh)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access, s.access != "" && s.access != sent
}

// fly runs the refresh f with the refresh token rt. It runs on its own,
// not canceled with the request that started it: the server uses rt up as
// soon as it answers, so an answer nobody reads would leave the session
// without a valid refresh token.
func (s *Session) fly(ctx context.Context, f *flight, rt string) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	sent := s.now()
	grant := "refresh_token"
	tok, err := tokenOf(s.auth.CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{
		GrantType: &grant, RefreshToken: &rt,
	}))
	var refused *LoginError
	s.mu.Lock()
	switch {
	case s.ended:
	case err == nil:
		s.set(tok, sent)
	case errors.As(err, &refused) && refused.Status == http.StatusBadRequest:
		s.forget() // the session is over
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// set keeps the tokens /token answered to a request sent at sent. With no
// refresh token in the answer, the previous one stays (RFC 6749 section 6).
// s.mu must be held, or s not yet shared.
func (s *Session) set(tok *api.Token, sent time.Time) {
	s.access = tok.AccessToken
	if tok.RefreshToken != nil {
		s.refresh = *tok.RefreshToken
	}
	s.refreshAt = time.Time{}
	if life := time.Duration(tok.ExpiresIn) * time.Second; life > 0 {
		s.refreshAt = sent.Add(life - min(refreshBefore, life/2))
	}
}

// forget drops the tokens; s.mu must be held.
func (s *Session) forget() {
	s.access, s.refresh, s.refreshAt = "", "", time.Time{}
}

// withToken returns a copy of req with body, carrying the access token, or
// no Authorization header if access is empty.
func withToken(req *http.Request, body io.ReadCloser, access string) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	if access == "" {
		r.Header.Del("Authorization")
	} else {
		r.Header.Set("Authorization", "Bearer "+access)
	}
	return r
}

// invalidToken reports whether resp refuses the access token: 401 with a
// Bearer challenge whose error is invalid_token (RFC 6750 section 3.1).
// A 401 without it (no token was sent) is not renewed.
func invalidToken(resp *http.Response) bool {
	return resp.StatusCode == http.StatusUnauthorized && bearerError(resp.Header.Values("WWW-Authenticate")) == "invalid_token"
}

// bearerError returns the error auth-param of the Bearer challenge among
// WWW-Authenticate values (RFC 9110 section 11.6.1), or "". Each value may
// hold several challenges; a parameter's value is a token or a quoted
// string.
func bearerError(values []string) string {
	for _, v := range values {
		bearer := false
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			name := v[:len(v)-len(strings.TrimLeft(v, tchars))]
			if name == "" { // not a token: skip a character
				if v != "" {
					v = v[1:]
				}
				continue
			}
			rest := strings.TrimLeft(v[len(name):], " \t")
			if !strings.HasPrefix(rest, "=") {
				bearer = strings.EqualFold(name, "Bearer") // a new challenge
				v = rest
				continue
			}
			var value string
			value, v = paramValue(strings.TrimLeft(rest[1:], " \t"))
			if bearer && strings.EqualFold(name, "error") {
				return value
			}
		}
	}
	return ""
}

// tchars are the characters of an RFC 9110 token.
const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// paramValue reads a token or quoted string at the start of v and returns
// it and the rest of v.
func paramValue(v string) (value, rest string) {
	if !strings.HasPrefix(v, `"`) {
		n := len(v) - len(strings.TrimLeft(v, tchars))
		return v[:n], v[n:]
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return b.String(), v[i+1:]
		case c == '\\' && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "" // unterminated
}
