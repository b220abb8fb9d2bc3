// Package authorize is the authorization endpoint's logic (OAuth 2.1, the
// authorization code flow of OpenID Connect Core 1.0 §3.1): it checks an
// authorization request against its client (redirect URIs compared
// exactly, PKCE with S256 required of every client), tells the errors
// that must not redirect from those that go back to the client, and
// issues and exchanges the one-use codes, bound to their client, redirect
// URI and PKCE challenge.
//
// The HTTP side (pages, cookies, the token endpoint's grant) lives in
// package handlers; this package holds no HTTP.
package authorize

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params is an authorization request as sent, every parameter a string ("" when
// absent). Its JSON names are the request's parameter names.
type Params struct {
	ResponseType        string `json:"response_type"`
	ClientID            string `json:"client_id"`
	RedirectURI         string `json:"redirect_uri"`
	Scope               string `json:"scope"`
	State               string `json:"state"`
	Nonce               string `json:"nonce"`
	CodeChallenge       string `json:"code_challenge"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	Prompt              string `json:"prompt"`
	MaxAge              string `json:"max_age"`
	ACRValues           string `json:"acr_values"`
	ResponseMode        string `json:"response_mode"`
	Request             string `json:"request"`
	RequestURI          string `json:"request_uri"`
	LoginHint           string `json:"login_hint"`
}

// Values returns p as form values, the empty ones left out: the hidden
// fields of the sign-in page, which posts the request back.
func (p Params) Values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{
		"response_type": p.ResponseType, "client_id": p.ClientID, "redirect_uri": p.RedirectURI,
		"scope": p.Scope, "state": p.State, "nonce": p.Nonce, "code_challenge": p.CodeChallenge,
		"code_challenge_method": p.CodeChallengeMethod, "prompt": p.Prompt, "max_age": p.MaxAge, "acr_values": p.ACRValues,
		"response_mode": p.ResponseMode, "login_hint": p.LoginHint,
	} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Client is a client as the authorization and token endpoints see it.
type Client struct {
	ID, Name string
	// Public clients hold no secret (token_endpoint_auth_method none).
	Public bool
	// SecretHash is the SHA-256 of a confidential client's secret.
	SecretHash             []byte
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Roles are those of the client's own tokens (client credentials).
	Roles        []string
	TokenVersion int64
	// BuiltIn clients are rolegate's own (the docs), not rows.
	BuiltIn bool
}

// The OpenID Connect scopes; any other scope value names a role.
const (
	ScopeOpenID  = "openid"
	ScopeEmail   = "email"
	ScopeProfile = "profile"
	ScopeOffline = "offline_access"
)

// Scopes lists the OpenID Connect scopes, as discovery publishes them.
var Scopes = []string{ScopeOpenID, ScopeEmail, ScopeProfile, ScopeOffline}

// Scope is a parsed scope parameter.
type Scope struct {
	// OIDC holds the OpenID Connect scopes asked for, sorted.
	OIDC []string
	// Roles are the role names asked for, sorted; nil for every role the
	// person holds.
	Roles []string
}

// ParseScope splits a scope parameter (RFC 6749 §3.3) into OpenID Connect
// scopes and role names, in any order, each once.
func ParseScope(s string) Scope {
	var sc Scope
	for _, f := range strings.Fields(s) {
		if slices.Contains(Scopes, f) {
			sc.OIDC = append(sc.OIDC, f)
		} else {
			sc.Roles = append(sc.Roles, f)
		}
	}
	slices.Sort(sc.OIDC)
	sc.OIDC = slices.Compact(sc.OIDC)
	slices.Sort(sc.Roles)
	sc.Roles = slices.Compact(sc.Roles)
	return sc
}

// Has reports whether sc asks for the OpenID Connect scope name.
func (sc Scope) Has(name string) bool { return slices.Contains(sc.OIDC, name) }

// List returns the scope as stored with a code: OpenID Connect scopes then
// roles.
func (sc Scope) List() []string { return append(slices.Clone(sc.OIDC), sc.Roles...) }

// String is the scope as the token response states it: the OpenID Connect
// scopes granted and the roles the access token carries.
func (sc Scope) String(roles []string) string {
	return strings.Join(append(slices.Clone(sc.OIDC), roles...), " ")
}

// Request is a checked authorization request.
type Request struct {
	Client      Client
	RedirectURI string
	State       string
	Nonce       string
	// Challenge is the PKCE S256 code challenge.
	Challenge string
	Scope     Scope
	// Login says prompt=login: the password again, whatever the cookie.
	Login bool
	// None says prompt=none: no page; login_required without a session.
	None bool
	// MaxAge, when set, is how long ago the password may have been
	// entered at most.
	MaxAge *time.Duration
	// ACRValues are the acr values asked for (acr_values), best first;
	// a session whose sign-in had none of them signs in again.
	ACRValues []string
	LoginHint string
	Params    Params
}

// PageError is a refusal that must not redirect: the client or its
// redirect URI is not known (RFC 6749 §4.1.2.1). It is shown to the person
// on an error page.
type PageError struct{ Detail string }

func (e *PageError) Error() string { return "authorize: " + e.Detail }

// Error is a refusal sent back to the client's redirect URI (RFC 6749
// §4.1.2.1, OpenID Connect Core §3.1.2.6).
type Error struct {
	Code, Description string
}

func (e *Error) Error() string { return "authorize: " + e.Code + ": " + e.Description }

// The error codes of the authorization endpoint.
const (
	InvalidRequest          = "invalid_request"
	UnsupportedResponseType = "unsupported_response_type"
	InvalidScope            = "invalid_scope"
	LoginRequired           = "login_required"
	RequestNotSupported     = "request_not_supported"
	RequestURINotSupported  = "request_uri_not_supported"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	TemporarilyUnavailable  = "temporarily_unavailable"
)

// Check checks p for client (nil when client_id names none). The client
// and the redirect URI are checked first, and their faults are a
// *PageError; once the redirect URI is known good, every other fault is an
// *Error to send there, with the returned Request's RedirectURI and State
// set for it.
func Check(p Params, client *Client) (Request, error) {
	switch {
	case p.ClientID == "":
		return Request{}, &PageError{"The request names no client (client_id)."}
	case client == nil:
		return Request{}, &PageError{"The request names a client that is not registered (client_id)."}
	}
	r := Request{Client: *client, State: p.State, Params: p}
	switch {
	case p.RedirectURI != "":
		if !slices.Contains(client.RedirectURIs, p.RedirectURI) {
			return Request{}, &PageError{"The redirect_uri is not one registered for this client."}
		}
		r.RedirectURI = p.RedirectURI
	case len(client.RedirectURIs) == 1:
		// OpenID Connect makes redirect_uri required; OAuth 2.1 lets a
		// client with one registered URI leave it out. A code issued so is
		// exchanged without one.
		r.RedirectURI = client.RedirectURIs[0]
	default:
		return Request{}, &PageError{"The request has no redirect_uri, and the client has not exactly one registered."}
	}
	fail := func(code, desc string) (Request, error) { return r, &Error{Code: code, Description: desc} }
	switch {
	case p.Request != "":
		return fail(RequestNotSupported, "Request objects (the request parameter) are not supported.")
	case p.RequestURI != "":
		return fail(RequestURINotSupported, "Request objects by reference (request_uri) are not supported.")
	case p.ResponseType == "":
		return fail(InvalidRequest, "response_type is required.")
	case p.ResponseType != "code":
		return fail(UnsupportedResponseType, "Only response_type=code is supported (the authorization code flow).")
	case p.ResponseMode != "" && p.ResponseMode != "query":
		return fail(InvalidRequest, "Only response_mode=query is supported.")
	case p.CodeChallenge == "":
		return fail(InvalidRequest, "PKCE is required: send code_challenge and code_challenge_method=S256.")
	case p.CodeChallengeMethod != "S256":
		return fail(InvalidRequest, "code_challenge_method must be S256; plain is not accepted.")
	case !validChallenge(p.CodeChallenge):
		return fail(InvalidRequest, "code_challenge must be 43 base64url characters (S256).")
	}
	r.Challenge, r.Nonce, r.LoginHint = p.CodeChallenge, p.Nonce, p.LoginHint
	r.Scope = ParseScope(p.Scope)
	for _, v := range strings.Fields(p.Prompt) {
		switch v {
		case "login":
			r.Login = true
		case "none":
			r.None = true
		case "consent", "select_account":
			// Nothing to ask: rolegate's clients are the operator's own,
			// and a browser has one account signed in at a time.
		default:
			return fail(InvalidRequest, "prompt must be none, login, consent or select_account.")
		}
	}
	if r.None && (r.Login || len(strings.Fields(p.Prompt)) > 1) {
		return fail(InvalidRequest, "prompt=none cannot be combined with other values.")
	}
	if p.MaxAge != "" {
		n, err := strconv.ParseInt(p.MaxAge, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return fail(InvalidRequest, "max_age must be a whole number of seconds.")
		}
		d := time.Duration(n) * time.Second
		r.MaxAge = &d
	}
	r.ACRValues = strings.Fields(p.ACRValues)
	return r, nil
}

// Fresh reports whether a sign-in at authTime of assurance acr satisfies
// r at now: without prompt=login, within max_age if one was asked for,
// with one of acr_values if they were. Unknown acr values are only never
// met: the sign-in asked for happens, and its token's acr tells the
// client what it got.
func (r Request) Fresh(authTime time.Time, acr string, now time.Time) bool {
	if r.Login || len(r.ACRValues) > 0 && !slices.Contains(r.ACRValues, acr) {
		return false
	}
	return r.MaxAge == nil || !now.After(authTime.Add(*r.MaxAge))
}

// ErrorURL is where a refusal sends the browser: the redirect URI with
// error, error_description, state and iss (RFC 9207).
func (r Request) ErrorURL(e *Error, issuer string) string {
	v := url.Values{"error": {e.Code}, "error_description": {e.Description}, "iss": {issuer}}
	if r.State != "" {
		v.Set("state", r.State)
	}
	return withQuery(r.RedirectURI, v)
}

// CodeURL is where a sign-in sends the browser: the redirect URI with the
// code, state and iss (RFC 9207).
func (r Request) CodeURL(code, issuer string) string {
	v := url.Values{"code": {code}, "iss": {issuer}}
	if r.State != "" {
		v.Set("state", r.State)
	}
	return withQuery(r.RedirectURI, v)
}

// withQuery adds v to the query of uri, keeping what it had (RFC 6749
// §3.1.2: the redirect URI's own query is kept).
func withQuery(uri string, v url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri // registered URIs parse; see CheckRedirectURI
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	// Spaces as %20 rather than +: both are right in a query, but some
	// clients (Swagger UI's redirect page) decode only the first.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// validChallenge reports whether s is an S256 challenge: the base64url
// encoding, unpadded, of 32 bytes.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// VerifyPKCE reports whether verifier (RFC 7636 §4.1: 43 to 128 unreserved
// characters) matches the S256 challenge, in constant time.
func VerifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// CheckRedirectURI checks a redirect URI for registration: absolute, no
// fragment, no user info; http only to a loopback host (RFC 8252 §7.3,
// OAuth 2.1 §2.3.1); a private-use scheme for apps on devices (RFC 8252
// §7.1) has a dot in it. It returns what is wrong, or "".
func CheckRedirectURI(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs():
		return "must be an absolute URI"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not have user information"
	case strings.ContainsAny(s, " \t\r\n\x00") || !utf8Printable(s):
		return "must not hold spaces or control characters"
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "must have a host"
		}
	case "http":
		if !Loopback(u.Hostname()) {
			return "may use http only for a loopback host (127.0.0.1, [::1] or localhost)"
		}
	case "javascript", "data", "file", "vbscript", "blob", "about":
		return "must not use the " + u.Scheme + " scheme"
	default:
		if !strings.Contains(u.Scheme, ".") {
			return "must use https, http to a loopback host, or a private-use scheme in reverse domain order (com.example.app)"
		}
	}
	return ""
}

// Loopback reports whether host is a loopback name or address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}
