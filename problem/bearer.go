package problem

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The refusals of a bearer token, each with its RFC 6750 section 3
// challenge in WWW-Authenticate.

// challenge starts every WWW-Authenticate header rolegate sends.
const challenge = `Bearer realm="rolegate"`

// TokenRequired is the 401 for a request with no bearer credentials: a bare
// challenge (RFC 6750 section 3.1), without an error code. cause, if any, is
// only logged.
func TokenRequired(cause error) *Error {
	return &Error{Kind: Unauthenticated, Detail: "An access token is required.",
		Header: http.Header{"Www-Authenticate": {challenge}}, Err: cause}
}

// InvalidToken is the 401 for a token that does not verify, or that the
// account behind it no longer backs (deleted, disabled, or without the role
// the operation needs); cause is only logged.
func InvalidToken(detail string, cause error) *Error {
	return &Error{Kind: Unauthenticated, Detail: detail,
		Header: http.Header{"Www-Authenticate": {challenge + `, error="invalid_token"`}}, Err: cause}
}

// InsufficientScope is the 403 for a valid token without the privilege an
// operation needs: one of roles, which x-roles lists, or which one of the
// object-level rules the spec cannot express asks for. The body names them
// (required_roles): the spec is public, so this tells nothing secret.
func InsufficientScope(detail string, roles []string) *Error {
	return &Error{Kind: Forbidden, Detail: detail, RequiredRoles: roles,
		Header: http.Header{"Www-Authenticate": {challenge + `, error="insufficient_scope"`}}}
}

// TypeStepUp is the problem type of InsufficientUserAuthentication.
const TypeStepUp = "urn:rolegate:problem:insufficient-user-authentication"

// InsufficientUserAuthentication is the 401 for a valid token from a
// sign-in that is not strong enough, or not recent enough, for the
// operation (RFC 9470 section 3): the challenge names the acr values that
// would do and, when set, the max_age in seconds; the client sends the
// person to sign in again with them.
func InsufficientUserAuthentication(detail string, acrValues []string, maxAge time.Duration) *Error {
	h := challenge + `, error="insufficient_user_authentication", acr_values="` + strings.Join(acrValues, " ") + `"`
	if maxAge > 0 {
		h += ", max_age=" + strconv.Itoa(int(maxAge/time.Second))
	}
	return &Error{Kind: Unauthenticated, Type: TypeStepUp, Detail: detail, Header: http.Header{"Www-Authenticate": {h}}}
}

// TypeUserAccountsOnly is the problem type of UserAccountsOnly.
const TypeUserAccountsOnly = "urn:rolegate:problem:user-accounts-only"

// UserAccountsOnly is the 403 for a machine client's valid token on an
// operation whose x-callers admits user accounts alone: no role would
// admit the caller, so the body names none, and its type says why.
func UserAccountsOnly() *Error {
	return &Error{Kind: Forbidden, Type: TypeUserAccountsOnly,
		Detail: "This operation acts on the caller's own user account: a machine client's token cannot call it, whatever its roles.",
		Header: http.Header{"Www-Authenticate": {challenge + `, error="insufficient_scope"`}}}
}
