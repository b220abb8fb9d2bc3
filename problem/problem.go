// Package problem is rolegate's error vocabulary and the one place that turns
// an error into an HTTP status and an RFC 9457 application/problem+json body.
//
// Handlers return *Error values for outcomes the client should hear about;
// any other error is internal: it is logged with the request id and the
// client sees only "Internal error.".
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/httplog"
)

// Kind classifies an error by what the client can do about it.
type Kind int

// The kinds of error, each with one HTTP status.
const (
	Internal         Kind = iota // 500: a fault of ours; details are logged, not sent
	Invalid                      // 400: the request is malformed or fails validation
	Unauthenticated              // 401: no valid credentials
	Forbidden                    // 403: valid credentials without the right
	NotFound                     // 404: no such resource, or not the caller's
	MethodNotAllowed             // 405
	Conflict                     // 409: the request clashes with the current state
	TooLarge                     // 413: the body is over the limit
	UnsupportedMedia             // 415
	Unprocessable                // 422: well-formed but unusable content
	Unavailable                  // 503: try again later
	TooManyRequests              // 429: the caller is over its own limit; try again later
)

var statuses = [...]int{
	Internal:         http.StatusInternalServerError,
	Invalid:          http.StatusBadRequest,
	Unauthenticated:  http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	TooLarge:         http.StatusRequestEntityTooLarge,
	UnsupportedMedia: http.StatusUnsupportedMediaType,
	Unprocessable:    http.StatusUnprocessableEntity,
	Unavailable:      http.StatusServiceUnavailable,
	TooManyRequests:  http.StatusTooManyRequests,
}

// Status is the HTTP status code of the kind.
func (k Kind) Status() int { return statuses[k] }

// Error is an error whose Detail may be shown to the client. Err, if set, is
// the underlying cause: it is logged, never sent.
type Error struct {
	Kind Kind
	// Type is the problem type URI; empty means about:blank.
	Type   string
	Detail string
	Fields []api.FieldError
	// Header is set on the response, e.g. WWW-Authenticate or Retry-After.
	Header http.Header
	// RequiredRoles, on a Forbidden error, are the roles that would admit
	// the caller.
	RequiredRoles []string
	Err           error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a client-visible detail.
func New(k Kind, detail string) *Error { return &Error{Kind: k, Detail: detail} }

// Wrap returns an error of kind k with a client-visible detail and a cause
// that is only logged.
func Wrap(k Kind, detail string, err error) *Error { return &Error{Kind: k, Detail: detail, Err: err} }

// internalDetail is all a client hears of an internal error.
const internalDetail = "Internal error."

// ContentType is the media type of problem bodies.
const ContentType = "application/problem+json"

// Body is the problem document for err as the client sees it.
func Body(r *http.Request, err error) api.Problem {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Kind: Internal}
	}
	status := pe.Kind.Status()
	typ := pe.Type
	if typ == "" {
		typ = "about:blank"
	}
	p := api.Problem{
		Type:   typ,
		Title:  http.StatusText(status),
		Status: status,
	}
	detail := pe.Detail
	if pe.Kind == Internal {
		detail = internalDetail
	}
	if detail != "" {
		p.Detail = &detail
	}
	if id := httplog.RequestID(r.Context()); id != "" {
		p.RequestId = &id
	}
	// The path as the client sent it, percent-encoded: always ASCII, so
	// that bytes that are not UTF-8 neither come back as U+FFFD nor break
	// the body, and a NUL or a control character is not echoed raw.
	instance := r.URL.EscapedPath()
	p.Instance = &instance
	if len(pe.Fields) > 0 {
		fields := pe.Fields
		p.Errors = &fields
	}
	if pe.Kind == Forbidden && pe.RequiredRoles != nil {
		roles := pe.RequiredRoles
		p.RequiredRoles = &roles
	}
	return p
}

// Write sends err as a problem response. Internal errors, and any error with
// a cause, are logged with the request id; the cause never reaches the client.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	var pe *Error
	kind := Internal
	if errors.As(err, &pe) {
		kind = pe.Kind
		for k, vs := range pe.Header {
			w.Header()[k] = vs
		}
	}
	if kind == Internal {
		httplog.Logger(r.Context()).Error("internal error", "err", err)
	} else if pe.Err != nil {
		httplog.Logger(r.Context()).Debug("request refused", "status", kind.Status(), "err", pe.Err)
	}
	body, mErr := json.Marshal(Body(r, err))
	if mErr != nil { // cannot happen: the body holds only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(kind.Status())
	_, _ = w.Write(body)
}
