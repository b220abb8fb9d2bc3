// Package oauth holds what RFC 6749 asks of a token endpoint beyond what the
// spec can declare, for every grant type in one place: the error format
// (section 5.2) and the rules of the request itself (sections 3.1 and 3.2).
// The gate applies the request rules to every operation whose spec says
// `x-error-format: oauth2`, and answers its refusals in this format.
package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/rolegate/rolegate/problem"
)

// The error codes of RFC 6749 section 5.2.
const (
	InvalidRequest       = "invalid_request"
	InvalidClient        = "invalid_client"
	InvalidGrant         = "invalid_grant"
	UnauthorizedClient   = "unauthorized_client"
	UnsupportedGrantType = "unsupported_grant_type"
	InvalidScope         = "invalid_scope"
	// SlowDown is the code of a 429 (borrowed from RFC 8628 section 3.5,
	// since RFC 6749 has none): too many attempts; wait Retry-After.
	SlowDown = "slow_down"
	// MFARequired is rolegate's: the password was right, and the account
	// has a second factor to send with Error.MFAToken.
	MFARequired = "mfa_required"
)

// GrantMFA is the grant type of a password login's second step.
const GrantMFA = "urn:rolegate:grant-type:mfa"

// Error is a token endpoint's refusal: Status (400 unless the status itself
// tells more, such as 413), one of the error codes, and a description for
// the client's developer.
type Error struct {
	Status      int
	Code        string
	Description string
	// MFAToken goes with MFARequired, as mfa_token, and, for an account
	// with a passkey, PasskeyCeremony and PasskeyOptions (the WebAuthn
	// request options in their JSON form) as passkey_ceremony and
	// passkey_options.
	MFAToken        string
	PasskeyCeremony string
	PasskeyOptions  map[string]any
}

// Refuse returns the 400 refusal with code and description.
func Refuse(code, description string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: description}
}

func (e *Error) Error() string { return "oauth: " + e.Code + ": " + e.Description }

// Write sends e as RFC 6749 section 5.2 says: a JSON object with "error"
// and "error_description", never cached.
func Write(w http.ResponseWriter, e *Error) {
	m := map[string]string{"error": e.Code, "error_description": e.Description}
	if e.MFAToken != "" {
		m["mfa_token"] = e.MFAToken
	}
	body, _ := json.Marshal(m)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// FromProblem is the RFC 6749 form of a request the gate refused before the
// endpoint saw it: malformed or invalid parameters, a body that is not a
// form, or one over the limit are all invalid_request. It returns nil for
// any other problem, which keeps its own format (a database that is gone,
// say).
func FromProblem(p *problem.Error) *Error {
	switch p.Kind {
	case problem.Invalid:
		return Refuse(InvalidRequest, p.Detail)
	case problem.UnsupportedMedia:
		return Refuse(InvalidRequest, "The request is not a valid token request: send a form (application/x-www-form-urlencoded).")
	case problem.TooLarge:
		// RFC 6749 has no code of its own for this; the status tells it.
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: InvalidRequest, Description: p.Detail}
	}
	return nil
}

// CheckURL refuses parameters in the URL: credentials travel in the body,
// never in a URL that proxies and logs keep (section 3.2).
func CheckURL(r *http.Request) *Error {
	if r.URL.RawQuery != "" {
		return Refuse(InvalidRequest, "Parameters must be sent in the request body.")
	}
	return nil
}

// CheckForm refuses a form whose parameters repeat (section 3.1). The
// body must already be buffered: the form is parsed from it and stays
// readable for the endpoint.
func CheckForm(r *http.Request) *Error {
	if err := r.ParseForm(); err != nil {
		return Refuse(InvalidRequest, "The request body is not a valid form.")
	}
	for _, vs := range r.PostForm {
		if len(vs) > 1 {
			return Refuse(InvalidRequest, "Parameters must not be repeated.")
		}
	}
	return nil
}
