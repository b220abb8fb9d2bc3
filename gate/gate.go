// Package gate is the path every API request takes before its handler, in
// this order: it routes the request to its operation in the spec (404, 405);
// for a secured operation it verifies the bearer token (401) and checks the
// operation's x-roles and x-callers (403) before a byte of the body is read; it bounds the
// body (413); it refuses text PostgreSQL could not store (400); it validates
// parameters and body against the spec with kin-openapi's openapi3filter
// (400 naming the field, 415); and it hands the request, with the caller's
// claims in its context (access.Caller), to the handler.
//
// Refusals are RFC 9457 problem details, except on operations whose spec
// says `x-error-format: oauth2` (the token endpoint), which also follow the
// request rules of package oauth and answer in its format.
package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Verifier checks a raw bearer token. Every failure is reported the same way
// to the client, so its error is only logged.
type Verifier interface {
	Verify(raw string) (*token.Claims, error)
}

// Options configures the gate.
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
	// Throttle enforces the operations' x-rate-limit budgets; nil leaves
	// them unenforced (rolegate's server always sets it).
	Throttle Throttler
	// OnThrottled, if set, is told of the first request refused by
	// Throttle for each block of a client address or account on this
	// replica, not of every one: a flood of refused attempts is not a flood
	// of audit events. account is whom the request named, as its
	// per-account budget counts it: "email:" and a login's canonical
	// username, "client:" and a client id, "user:" and a caller's account
	// id, or "" for nobody.
	OnThrottled func(ctx context.Context, detail, account string)
	// Factors tells whether an account has a second factor, for the
	// operations whose x-acr a token does not meet (a step-up is asked of
	// an account that has one); nil means none has.
	Factors interface {
		HasFactor(ctx context.Context, user int64) (bool, error)
	}
	// RequireMFARoles are the roles whose holders must sign in with a
	// second factor (ROLEGATE_REQUIRE_MFA_ROLES): a person's token that
	// holds one without acr urn:rolegate:acr:mfa reaches only the
	// operations of x-mfa-enrolment.
	RequireMFARoles []string
	// OnStepUp, if set, is told of every step-up the gate asks for.
	OnStepUp func(ctx context.Context, c *token.Claims, operation string)
	// Now is the clock of x-acr's max-age; nil means time.Now.
	Now func() time.Time
	// Memberships tells a person's roles within an organization, for the
	// operations of x-org, from the replica's memory (no database work);
	// nil means nobody is a member of any.
	Memberships interface {
		RolesIn(user, org int64) (roles []string, member bool)
	}
}

// The extensions of the spec the gate reads, on an operation or (for
// MaxBodyExt) on the document as its default.
const (
	// ErrorFormatExt selects the error body format: "oauth2" for RFC 6749
	// section 5.2 bodies (the token endpoint); "html" for a page a person
	// reads (the sign-in pages; 5xx stay problem details); anything else
	// means RFC 9457 problem details.
	ErrorFormatExt = "x-error-format"
	// MaxBodyExt declares the largest request body, in bytes.
	MaxBodyExt = "x-max-body-bytes"
	// BearerInFormExt (true) lets a POST operation's access token come as
	// access_token in a form body instead of the Authorization header (RFC
	// 6750 section 2.2): the body, bounded, is then read before the token
	// is checked.
	BearerInFormExt = "x-bearer-in-form"
)

// operation is everything the gate needs about one operation, worked out
// once at start-up.
type operation struct {
	rule        *access.Rule
	route       *routers.Route
	params      []string // names of its path parameters
	oauthErrors bool
	maxBody     int64
	forbidden   error          // the 403 naming the operation's x-roles
	limit       *throttle.Rule // x-rate-limit, or nil
	// accountKey and addressKey begin the names of its throttling keys.
	accountKey, addressKey string
	// validate is false for an operation with no parameters and no
	// body, for which openapi3filter would check nothing but the security
	// requirement that serve has just checked itself.
	validate bool
	// next is the operation's own handler, or New's next.
	next http.Handler
	// formToken is BearerInFormExt.
	formToken bool
	// htmlErrors: refusals are pages (ErrorFormatExt html).
	htmlErrors bool
}

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
				return 0, fmt.Errorf("gate: %s of %s must be a positive whole number", MaxBodyExt, op.OperationID)
			}
			return int64(n), nil
		}
	}
	return opts.MaxBodyBytes, nil
}

type gate struct {
	opts       Options
	policy     *access.Policy
	filterOpts *openapi3filter.Options
	reported   reported
}

// New returns the handler that takes every request through the gate to
// next, for the operations of spec. When next is Routes, each request goes
// straight to its operation's handler, and every operation must have one.
func New(spec *access.Spec, opts Options, next http.Handler) (http.Handler, error) {
	if opts.Verifier == nil {
		return nil, errors.New("gate: no token verifier")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 20 << 20
	}
	g := &gate{opts: opts, policy: spec.Policy}
	routes, _ := next.(*Routes)
	g.filterOpts = &openapi3filter.Options{
		AuthenticationFunc:      g.authenticated,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidator("email", emailFormat)},
	}
	g.filterOpts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string { return err.Reason })

	mux := http.NewServeMux()
	rt := &router{g: g, mux: mux, static: map[string][]staticRoute{}}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(problem.NotFound, "No such resource."))
	})
	doc := spec.Doc
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		var allowed []string
		for method, op := range item.Operations() {
			rule := spec.Policy.Rule(op)
			if rule == nil {
				return nil, errors.New("gate: operation " + op.OperationID + " is not in the policy")
			}
			why := "The access token holds none of the roles this operation admits."
			if rule.Org != "" {
				why = "The caller holds none of the roles this operation admits: an org: role within the organization of {" + rule.Org + "}, or a global one."
			}
			o := &operation{
				forbidden:   problem.InsufficientScope(why, rule.Roles),
				rule:        rule,
				route:       &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
				oauthErrors: op.Extensions[ErrorFormatExt] == "oauth2",
				next:        next,
				formToken:   op.Extensions[BearerInFormExt] == true && method == http.MethodPost,
				htmlErrors:  op.Extensions[ErrorFormatExt] == "html",
			}
			if routes != nil {
				if o.next = routes.byPattern[method+" "+path]; o.next == nil {
					return nil, errors.New("gate: operation " + op.OperationID + " has no handler")
				}
			}
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
					o.params = append(o.params, p.Value.Name)
				}
			}
			o.validate = len(item.Parameters) > 0 || len(op.Parameters) > 0 || op.RequestBody != nil
			var err error
			if o.maxBody, err = maxBody(doc, op, opts); err != nil {
				return nil, err
			}
			if ext, ok := op.Extensions[throttle.Ext]; ok {
				if o.limit, err = throttle.Parse(ext); err != nil {
					return nil, fmt.Errorf("gate: %s: %w", op.OperationID, err)
				}
				o.accountKey, o.addressKey = "account:"+op.OperationID+":", "address:"+op.OperationID+":"
			}
			mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) { g.serve(o, w, r) })
			if !strings.Contains(path, "{") {
				rt.static[path] = append(rt.static[path], staticRoute{method: method, pattern: method + " " + path, op: o})
			}
			allowed = append(allowed, method)
		}
		sort.Strings(allowed)
		allow := strings.Join(allowed, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			problem.Write(w, r, problem.New(problem.MethodNotAllowed, "Allowed methods: "+allow+"."))
		})
	}
	return rt, nil
}

// router routes a request to its operation: through the mux, but for
// the paths of the spec without parameters, requested as written, by one
// lookup. For those the mux's walk of its tree would find the same
// operation, and set the same Request.Pattern; anything else (a path with
// parameters, escaped or not clean, HEAD, a method the path has no
// operation for) goes to the mux.
type router struct {
	g      *gate
	mux    *http.ServeMux
	static map[string][]staticRoute // by path
}

type staticRoute struct {
	method, pattern string
	op              *operation
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" {
		for _, s := range rt.static[r.URL.Path] {
			if s.method == r.Method {
				r.Pattern = s.pattern // as the mux sets it
				rt.g.serve(s.op, w, r)
				return
			}
		}
	}
	rt.mux.ServeHTTP(w, r)
}

func (g *gate) serve(o *operation, w http.ResponseWriter, r *http.Request) {
	httplog.SetOperation(r.Context(), o.route.Operation.OperationID)
	if !o.rule.Public {
		claims, err := g.authenticate(w, r, o)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		// Before the roles: a machine client is told what it is, not that
		// it is no member of an organization.
		if !o.rule.AdmitsCaller(claims.ClientID != "") {
			httplog.Logger(r.Context()).Info("access denied: user accounts only", "operation", o.route.Operation.OperationID,
				"sub", subject(claims))
			problem.Write(w, r, errUserAccountsOnly)
			return
		}
		var orgRoles []string
		if o.rule.Org != "" {
			var err error
			if orgRoles, err = g.inOrg(r, o, claims); err != nil {
				problem.Write(w, r, err)
				return
			}
		} else if !o.rule.Admits(claims.Roles) {
			httplog.Logger(r.Context()).Info("access denied", "operation", o.route.Operation.OperationID,
				"required_roles", o.rule.Roles, "token_roles", claims.Roles, "sub", subject(claims))
			problem.Write(w, r, o.forbidden)
			return
		}
		if claims.ClientID == "" && (o.rule.ACR != nil || g.mustEnrol(claims)) {
			if err := g.assured(r.Context(), o, claims); err != nil {
				problem.Write(w, r, err)
				return
			}
		}
		// In the request's slot, when the server made one: no copy of the
		// request.
		ctx := r.Context()
		if admitted := access.Admit(ctx, claims, o.rule.Org != "", orgRoles); admitted != ctx {
			r = r.WithContext(admitted)
		}
	}
	if r.ContentLength > o.maxBody {
		g.fail(o, w, r, problem.New(problem.TooLarge, "The request body is over the limit."))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, o.maxBody)
	}
	if o.oauthErrors {
		if e := oauth.CheckURL(r); e != nil {
			oauth.Write(w, e)
			return
		}
	}
	var params map[string]string
	if len(o.params) > 0 {
		params = make(map[string]string, len(o.params))
		for _, name := range o.params {
			params[name] = r.PathValue(name)
		}
	}
	if err := checkParams(r, params); err != nil {
		g.fail(o, w, r, err)
		return
	}
	if o.validate {
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: o.route, Options: g.filterOpts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			g.fail(o, w, r, requestProblem(err, o.forbidden))
			return
		}
	}
	if o.oauthErrors {
		// The validator has buffered the body, so the form can be read here
		// and again by the handler.
		if e := oauth.CheckForm(r); e != nil {
			oauth.Write(w, e)
			return
		}
	}
	if o.limit != nil && g.opts.Throttle != nil {
		g.throttled(o, w, r)
		return
	}
	o.next.ServeHTTP(w, r)
}

// authenticate verifies the request's bearer token (RFC 6750 section 2.1),
// or, for an operation that allows it, the one in its form body (section
// 2.2).
func (g *gate) authenticate(w http.ResponseWriter, r *http.Request, o *operation) (*token.Claims, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(h, " ")
	if o.formToken {
		inForm, err := formToken(w, r, o.maxBody)
		switch {
		case err != nil:
			return nil, err
		case h != "" && inForm != "":
			// RFC 6750 section 2: one method per request.
			return nil, problem.New(problem.Invalid, "The access token is in both the Authorization header and the form; send it once.")
		case h == "" && inForm == "":
			return nil, problem.TokenRequired(nil)
		case h == "":
			raw, scheme = inForm, "Bearer"
		}
	}
	if h == "" && raw == "" || !strings.EqualFold(scheme, "Bearer") {
		return nil, problem.TokenRequired(nil)
	}
	claims, err := g.opts.Verifier.Verify(strings.TrimSpace(raw))
	if err != nil {
		return nil, problem.InvalidToken("The access token is invalid.", err)
	}
	return claims, nil
}

// formToken reads access_token from a form body of at most limit bytes,
// and leaves the body to be read again; "" when there is none.
func formToken(w http.ResponseWriter, r *http.Request, limit int64) (string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" || r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	if r.ContentLength > limit {
		return "", problem.New(problem.TooLarge, "The request body is over the limit.")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return "", problem.New(problem.TooLarge, "The request body is over the limit.")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return "", problem.Wrap(problem.Invalid, "The form body is malformed.", err)
	}
	if len(v["access_token"]) > 1 {
		return "", problem.New(problem.Invalid, "access_token is given more than once.")
	}
	return v.Get("access_token"), nil
}

// errNoOrg is the answer to a caller who is not a member of the
// organization an operation names (nor holds a global role it admits):
// 404, as for an organization that does not exist, so that none leaks.
var errNoOrg = problem.New(problem.NotFound, "There is no such organization, or the caller is not a member of it.")

// inOrg checks the caller of an operation of x-org against its x-roles:
// the global roles it lists, or the org roles in the organization the
// path names, which the replica keeps in memory (Memberships); it
// returns the caller's roles there.
func (g *gate) inOrg(r *http.Request, o *operation, c *token.Claims) ([]string, error) {
	var roles []string
	member := false
	if id, err := strconv.ParseInt(r.PathValue(o.rule.Org), 10, 64); err == nil && id > 0 && c.ClientID == "" && g.opts.Memberships != nil {
		roles, member = g.opts.Memberships.RolesIn(c.UserID, id)
	}
	if o.rule.AdmitsIn(c.Roles, roles, member) {
		return roles, nil
	}
	log := httplog.Logger(r.Context())
	if !member {
		log.Info("access denied: not a member of the organization", "operation", o.route.Operation.OperationID, "org", r.PathValue(o.rule.Org), "sub", subject(c))
		return nil, errNoOrg
	}
	log.Info("access denied", "operation", o.route.Operation.OperationID, "required_roles", o.rule.Roles,
		"org", r.PathValue(o.rule.Org), "org_roles", roles, "token_roles", c.Roles, "sub", subject(c))
	return nil, o.forbidden
}

// mustEnrol reports whether a person's token holds a role of
// RequireMFARoles without coming from a sign-in with a second factor.
func (g *gate) mustEnrol(c *token.Claims) bool {
	if len(g.opts.RequireMFARoles) == 0 || c.ACR == token.ACRMFA {
		return false
	}
	for _, r := range g.opts.RequireMFARoles {
		if slices.Contains(c.Roles, r) {
			return true
		}
	}
	return false
}

// assured checks a person's token against the operation's x-acr and
// RequireMFARoles, after its roles: a token of a role that must have a
// second factor, from a sign-in without one, reaches only the enrolment
// operations; a token below x-acr is asked to step up (RFC 9470) when
// its account has a second factor to step up with, and passes when it
// has none.
func (g *gate) assured(ctx context.Context, o *operation, c *token.Claims) error {
	op := o.route.Operation.OperationID
	if g.mustEnrol(c) && !o.rule.Enrolment {
		httplog.Logger(ctx).Info("access denied: a second factor is required for the token's roles", "operation", op, "sub", subject(c))
		return problem.InsufficientUserAuthentication("The token's roles ("+strings.Join(g.opts.RequireMFARoles, ", ")+
			") need a sign-in with a second factor. Enrol one (POST /identify/me/mfa/totp), then sign in again with it.", []string{token.ACRMFA}, 0)
	}
	a := o.rule.ACR
	if a == nil || a.Satisfied(c.ACR, c.AuthTime, g.now()) {
		return nil
	}
	if g.opts.Factors == nil {
		return nil
	}
	has, err := g.opts.Factors.HasFactor(ctx, c.UserID)
	if err != nil {
		return dberr.Translate(err, "")
	}
	if !has {
		return nil
	}
	httplog.Logger(ctx).Info("step-up required", "operation", op, "sub", subject(c), "acr", c.ACR)
	if g.opts.OnStepUp != nil {
		g.opts.OnStepUp(ctx, c, op)
	}
	detail := "This operation needs a sign-in with " + strings.Join(a.Values, " or ")
	if a.MaxAge > 0 {
		detail += " within the last " + strconv.Itoa(int(a.MaxAge/time.Second)) + " seconds"
	}
	return problem.InsufficientUserAuthentication(detail+": sign in again with your second factor, then retry with the new token.", a.Values, a.MaxAge)
}

func (g *gate) now() time.Time {
	if g.opts.Now != nil {
		return g.opts.Now()
	}
	return time.Now()
}

// subject is the sub of claims, for logs.
func subject(c *token.Claims) string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return strconv.FormatInt(c.UserID, 10)
}

// errUserAccountsOnly refuses a machine client an operation of x-callers
// [user].
var errUserAccountsOnly = problem.UserAccountsOnly()

// errNoAdmittedRole tells requestProblem that the validator's
// AuthenticationFunc found no admitted role.
var errNoAdmittedRole = errors.New("gate: no admitted role")

// authenticated is the validator's AuthenticationFunc. The token was
// verified and the roles checked before validation started, so that no body
// is read for a caller who will be refused; this re-checks, from the claims
// in the context and the matched operation's rule, that both happened.
func (g *gate) authenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	claims := access.Caller(in.RequestValidationInput.Request.Context())
	if claims == nil {
		return errors.New("gate: no verified token")
	}
	// An operation of x-org was checked against the caller's roles in the
	// organization, which the claims do not hold.
	if rule := g.policy.Rule(in.RequestValidationInput.Route.Operation); rule == nil || rule.Org == "" && !rule.Admits(claims.Roles) || !rule.AdmitsCaller(claims.ClientID != "") {
		return errNoAdmittedRole
	}
	return nil
}

// fail writes err in the operation's error format.
func (g *gate) fail(o *operation, w http.ResponseWriter, r *http.Request, err error) {
	if o.oauthErrors {
		if pe, ok := errors.AsType[*problem.Error](err); ok {
			if e := oauth.FromProblem(pe); e != nil {
				oauth.Write(w, e)
				return
			}
		}
	}
	if o.htmlErrors && htmlPage(w, err) {
		return
	}
	problem.Write(w, r, err)
}

// htmlPage writes a client error err as a page; false for anything else,
// which stays problem details.
func htmlPage(w http.ResponseWriter, err error) bool {
	pe, ok := errors.AsType[*problem.Error](err)
	if !ok {
		return false
	}
	status := pe.Kind.Status()
	if status < 400 || status >= 500 {
		return false
	}
	for k, vs := range pe.Header {
		w.Header()[k] = vs
	}
	text := pe.Detail
	for _, f := range pe.Fields {
		text += " " + f.Field + " " + f.Message + "."
	}
	_ = signin.Write(w, signin.RenderMessage(status, signin.Message{Title: http.StatusText(status), Text: text}))
	return true
}
