package access

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/rolegate/rolegate/email"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Verifier checks a raw bearer token. Every failure is reported the same way
// to the client, so its error is only logged.
type Verifier interface {
	Verify(raw string) (*token.Claims, error)
}

type callerKey struct{}

// Caller returns the verified claims of the request's bearer token, or nil
// on a public operation. The claims are shared: do not modify them.
func Caller(ctx context.Context) *token.Claims {
	c, _ := ctx.Value(callerKey{}).(*token.Claims)
	return c
}

// Options configures the middleware.
type Options struct {
	// Verifier checks bearer tokens.
	Verifier Verifier
	// MaxBodyBytes bounds request bodies of operations for which the spec
	// declares no x-max-body-bytes (on the operation or the document); larger
	// ones get 413 without being read. Zero means 1 MiB.
	MaxBodyBytes int64
	// MaxUploadBytes bounds multipart/form-data bodies (uploads). Zero means
	// 20 MiB.
	MaxUploadBytes int64
}

// ErrorFormatExt is the operation extension that selects the error body
// format: "oauth2" for RFC 6749 section 5.2 bodies (the token endpoint);
// anything else means RFC 9457 problem details.
const ErrorFormatExt = "x-error-format"

// operation is everything the middleware needs about one operation, worked
// out once at start-up.
type operation struct {
	rule        *Rule
	route       *routers.Route
	params      []string // names of its path parameters
	oauthErrors bool
	maxBody     int64
}

// MaxBodyExt declares the largest request body, in bytes, on the document
// (the default) or on one operation.
const MaxBodyExt = "x-max-body-bytes"

// maxBody is the operation's body limit: multipart bodies are uploads, bound
// by configuration; others by the spec.
func maxBody(doc *openapi3.T, op *openapi3.Operation, opts Options) (int64, error) {
	if rb := op.RequestBody; rb != nil && rb.Value != nil && rb.Value.Content.Get("multipart/form-data") != nil {
		return opts.MaxUploadBytes, nil
	}
	for _, ext := range []map[string]any{op.Extensions, doc.Extensions} {
		if v, ok := ext[MaxBodyExt]; ok {
			n, ok := v.(float64)
			if !ok || n < 1 || n != float64(int64(n)) {
				return 0, fmt.Errorf("access: %s of %s must be a positive whole number", MaxBodyExt, op.OperationID)
			}
			return int64(n), nil
		}
	}
	return opts.MaxBodyBytes, nil
}

type middleware struct {
	opts       Options
	policy     *Policy
	next       http.Handler
	mux        *http.ServeMux
	filterOpts *openapi3filter.Options
}

// Middleware returns the handler that routes every request to its
// operation in doc and, in this order: answers 404 or 405 for requests the
// spec does not route; for a secured operation verifies the bearer token and
// checks the operation's x-roles (401 or 403) before a byte of the body is
// read; bounds the body; validates parameters and body against the spec with
// kin-openapi's openapi3filter (400 naming the field, 413, 415); and hands
// the request, with the caller's claims in its context, to next.
func Middleware(doc *openapi3.T, policy *Policy, opts Options, next http.Handler) (http.Handler, error) {
	if opts.Verifier == nil {
		return nil, errors.New("access: no token verifier")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 20 << 20
	}
	m := &middleware{
		opts:   opts,
		policy: policy,
		next:   next,
		mux:    http.NewServeMux(),
	}
	m.filterOpts = &openapi3filter.Options{
		AuthenticationFunc:      m.authenticated,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidator("email", emailFormat)},
	}
	m.filterOpts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string { return err.Reason })

	m.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(problem.NotFound, "No such resource."))
	})
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		var allowed []string
		for method, op := range item.Operations() {
			rule := policy.Rule(op)
			if rule == nil {
				return nil, errors.New("access: operation " + op.OperationID + " is not in the policy")
			}
			o := &operation{
				rule:  rule,
				route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
			}
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
					o.params = append(o.params, p.Value.Name)
				}
			}
			o.oauthErrors = op.Extensions[ErrorFormatExt] == "oauth2"
			var err error
			if o.maxBody, err = maxBody(doc, op, opts); err != nil {
				return nil, err
			}
			m.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) { m.serve(o, w, r) })
			allowed = append(allowed, method)
		}
		sort.Strings(allowed)
		allow := strings.Join(allowed, ", ")
		m.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			problem.Write(w, r, problem.New(problem.MethodNotAllowed, "Allowed methods: "+allow+"."))
		})
	}
	return m.mux, nil
}

func (m *middleware) serve(o *operation, w http.ResponseWriter, r *http.Request) {
	if !o.rule.Public {
		claims, err := m.authenticate(r)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		if !o.rule.Admits(claims.Roles) {
			problem.Write(w, r, m.forbidden())
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, claims))
	}
	if r.ContentLength > o.maxBody {
		m.fail(o, w, r, problem.New(problem.TooLarge, "The request body is over the limit."))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, o.maxBody)
	}
	if o.oauthErrors && r.URL.RawQuery != "" {
		// RFC 6749 section 3.2: credentials travel in the body, never in a URL that gets logged.
		WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "Parameters must be sent in the request body.")
		return
	}
	var params map[string]string
	if len(o.params) > 0 {
		params = make(map[string]string, len(o.params))
		for _, name := range o.params {
			params[name] = r.PathValue(name)
		}
	}
	if err := checkParams(r, params); err != nil {
		m.fail(o, w, r, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: o.route, Options: m.filterOpts}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		m.fail(o, w, r, m.requestProblem(err))
		return
	}
	if o.oauthErrors && !singleValued(r) {
		WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "Parameters must not be repeated.")
		return
	}
	m.next.ServeHTTP(w, r)
}

// authenticate verifies the request's bearer token (RFC 6750 section 2.1).
func (m *middleware) authenticate(r *http.Request) (*token.Claims, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		// No bearer credentials at all: a bare challenge (RFC 6750 section 3.1).
		return nil, &problem.Error{
			Kind:   problem.Unauthenticated,
			Detail: "An access token is required.",
			Header: http.Header{"Www-Authenticate": {challenge}},
		}
	}
	claims, err := m.opts.Verifier.Verify(strings.TrimSpace(raw))
	if err != nil {
		return nil, InvalidToken("The access token is invalid.", err)
	}
	return claims, nil
}

// InvalidToken is the 401 for a token that verified but that the account
// behind it no longer backs (it was deleted, disabled or lost the role the
// operation needs), with its RFC 6750 challenge; cause is only logged.
func InvalidToken(detail string, cause error) error {
	return &problem.Error{
		Kind:   problem.Unauthenticated,
		Detail: detail,
		Header: http.Header{"Www-Authenticate": {challenge + `, error="invalid_token"`}},
		Err:    cause,
	}
}

func (m *middleware) forbidden() error {
	return Forbidden("The access token does not grant access to this operation.")
}

// Forbidden is the 403 for a caller whose token lacks the privilege an
// operation needs, with its RFC 6750 challenge; handlers use it for the
// object-level rules the spec cannot express.
func Forbidden(detail string) error {
	return &problem.Error{
		Kind:   problem.Forbidden,
		Detail: detail,
		Header: http.Header{"Www-Authenticate": {challenge + `, error="insufficient_scope"`}},
	}
}

// challenge is the start of every WWW-Authenticate header rolegate sends.
const challenge = `Bearer realm="rolegate"`

var errForbidden = errors.New("access: no admitted role")

// authenticated is the validator's AuthenticationFunc. The token was
// verified and the roles checked before validation started, so that no body
// is read for a caller who will be refused; this re-checks, from the claims
// in the context and the matched operation's rule, that both happened.
func (m *middleware) authenticated(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	claims := Caller(in.RequestValidationInput.Request.Context())
	if claims == nil {
		return errors.New("access: no verified token")
	}
	if rule := m.policy.Rule(in.RequestValidationInput.Route.Operation); rule == nil || !rule.Admits(claims.Roles) {
		return errForbidden
	}
	return nil
}

// requestProblem turns a validation error into the client's error, naming
// the field without passing on library text beyond the schema's reason.
func (m *middleware) requestProblem(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return problem.Wrap(problem.TooLarge, "The request body is over the limit.", err)
	}
	var secErr *openapi3filter.SecurityRequirementsError
	if errors.As(err, &secErr) {
		for _, e := range secErr.Errors {
			if errors.Is(e, errForbidden) {
				return m.forbidden()
			}
		}
		return &problem.Error{Kind: problem.Unauthenticated, Detail: "An access token is required.",
			Header: http.Header{"Www-Authenticate": {challenge}}, Err: err}
	}
	var reqErr *openapi3filter.RequestError
	if !errors.As(err, &reqErr) {
		return problem.Wrap(problem.Invalid, "The request is invalid.", err)
	}
	var field, msg string
	switch {
	case reqErr.Parameter != nil:
		field = reqErr.Parameter.In + "." + reqErr.Parameter.Name
		msg = "is invalid"
	case reqErr.RequestBody != nil:
		field = "body"
		if strings.HasPrefix(reqErr.Reason, "header Content-Type has unexpected value") {
			return problem.Wrap(problem.UnsupportedMedia, "The request body's Content-Type is not one this operation takes.", err)
		}
		if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) {
			return &problem.Error{Kind: problem.Invalid, Detail: "The request body is required.",
				Fields: []api.FieldError{{Field: "body", Message: "is required"}}, Err: err}
		}
		switch {
		case errors.Is(err, errBadText):
			msg = errBadText.Error()
		case errors.Is(err, errTrailingData):
			msg = errTrailingData.Error()
		default:
			msg = "is malformed"
		}
	default:
		return problem.Wrap(problem.Invalid, "The request is invalid.", err)
	}
	if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) {
		msg = "is required"
	}
	var schemaErr *openapi3.SchemaError
	if errors.As(err, &schemaErr) {
		if ptr := schemaErr.JSONPointer(); len(ptr) > 0 {
			field += "." + strings.Join(ptr, ".")
		}
		msg = schemaErr.Reason
	}
	return &problem.Error{
		Kind:   problem.Invalid,
		Detail: "The request is invalid: " + field + " " + msg + ".",
		Fields: []api.FieldError{{Field: field, Message: msg}},
		Err:    err,
	}
}

// fail writes err in the operation's error format.
func (m *middleware) fail(o *operation, w http.ResponseWriter, r *http.Request, err error) {
	if o.oauthErrors {
		var pe *problem.Error
		if errors.As(err, &pe) {
			switch pe.Kind {
			case problem.Invalid:
				WriteOAuthError(w, http.StatusBadRequest, "invalid_request", pe.Detail)
				return
			case problem.UnsupportedMedia:
				WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "The request is not a valid token request: send a form (application/x-www-form-urlencoded).")
				return
			case problem.TooLarge:
				// RFC 6749 has no error code of its own for this; the status says it.
				WriteOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", pe.Detail)
				return
			}
		}
	}
	problem.Write(w, r, err)
}

// singleValued reports whether no form parameter is repeated (RFC 6749
// section 3.1). The validator has buffered the body, so parsing it here
// leaves it for the handler.
func singleValued(r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	for _, vs := range r.PostForm {
		if len(vs) > 1 {
			return false
		}
	}
	return true
}

// emailFormat checks `format: email`, which kin-openapi leaves unchecked
// by default: a bare address as net/mail reads it (no display name, no
// comments), such as alice@example.com or admin@localhost, that has a
// canonical form (email.Canonical), so that no account is created under an
// address it could not log in with.
var emailFormat = openapi3.NewCallbackValidator(func(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return errors.New("not an email address")
	}
	_, err = email.Canonical(s)
	return err
})
