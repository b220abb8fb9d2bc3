package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// FirstPartyClient is the client_id of tokens that no registered client
// asked for: the password grant's, from scripts and the SDKs.
const FirstPartyClient = "rolegate"

// DocsClient is the client_id of the docs page (Swagger UI), a built-in
// public client whose redirect is the page's own oauth2-redirect.html.
const DocsClient = "rolegate-docs"

// ClientDirectory finds clients by id: rolegate's built-in ones, then the
// registered ones.
type ClientDirectory struct {
	Queries *db.Queries
	BuiltIn []authorize.Client
}

// Lookup returns the client id names, or nil for none.
func (d *ClientDirectory) Lookup(ctx context.Context, id string) (*authorize.Client, error) {
	for i := range d.BuiltIn {
		if d.BuiltIn[i].ID == id {
			c := d.BuiltIn[i]
			return &c, nil
		}
	}
	if id == "" || len(id) > 64 {
		return nil, nil
	}
	r, err := d.Queries.GetClient(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &authorize.Client{ID: r.ClientID, Name: r.Name, Public: r.Public, SecretHash: r.SecretHash,
		RedirectURIs: r.RedirectUris, PostLogoutRedirectURIs: r.PostLogoutRedirectUris,
		Roles: r.Roles, TokenVersion: r.TokenVersion}, nil
}

// Browser implements the signin tag's pages: the authorization endpoint,
// the hosted sign-in page and its form.
type Browser struct {
	Auth
	Cookies signin.Cookies
	CSRF    signin.CSRF
	// Issuer is the iss of the tokens, sent back with every answer of the
	// authorization endpoint (RFC 9207).
	Issuer string
	// PublicURL is the base of the pages' form actions.
	PublicURL string
	// SessionTTL is the browser session's absolute lifetime, and the
	// sign-in cookie's.
	SessionTTL time.Duration
	// Now is the clock.
	Now func() time.Time
	// ResetTTL is how long a reset mail's link works.
	ResetTTL time.Duration
	// SignUpOpen lets people create accounts (ROLEGATE_SIGNUP=open), with
	// SignUpRoles.
	SignUpOpen  bool
	SignUpRoles []string
}

// response is an answer of the signin pages, whatever operation: a page
// or a redirect, with cookies. It is every such operation's response
// object.
type response struct {
	page     *signin.Page
	location string
	cookies  []*http.Cookie
}

// visit writes r; redirect is its status if it is a redirect: 302, or 303
// for an answer to a POST.
func (r response) visit(w http.ResponseWriter, redirect int) error {
	if r.page != nil {
		return signin.Write(w, *r.page, r.cookies...)
	}
	return signin.Redirect(w, redirect, r.location, r.cookies...)
}

// VisitAuthorizeResponse writes r.
func (r response) VisitAuthorizeResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitAuthorizeByFormResponse writes r.
func (r response) VisitAuthorizeByFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// VisitSignInResponse writes r.
func (r response) VisitSignInResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// VisitEndSessionResponse writes r.
func (r response) VisitEndSessionResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitEndSessionByFormResponse writes r.
func (r response) VisitEndSessionByFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

func pageOf(p signin.Page, cookies ...*http.Cookie) response {
	return response{page: &p, cookies: cookies}
}

func errorPage(status int, title, text string) response {
	return pageOf(signin.RenderMessage(status, signin.Message{Title: title, Text: text}))
}

// paramsOf converts any of the generated forms of an authorization
// request (query parameters, form bodies) into authorize.Params: they share
// the parameters' JSON names.
func paramsOf(v any) authorize.Params {
	var p authorize.Params
	if b, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(b, &p) // the same string fields
	}
	return p
}

// Authorize is the authorization endpoint (GET).
func (b Browser) Authorize(ctx context.Context, req api.AuthorizeRequestObject) (api.AuthorizeResponseObject, error) {
	return b.authorize(ctx, paramsOf(req.Params))
}

// AuthorizeByForm is the authorization endpoint (POST).
func (b Browser) AuthorizeByForm(ctx context.Context, req api.AuthorizeByFormRequestObject) (api.AuthorizeByFormResponseObject, error) {
	var p authorize.Params
	if req.Body != nil {
		p = paramsOf(req.Body)
	}
	return b.authorize(ctx, p)
}

// check checks the authorization request p: a response when it is refused
// (an error page, or a redirect with the error), else the request.
func (b Browser) check(ctx context.Context, p authorize.Params) (authorize.Request, *response, error) {
	client, err := b.Clients.Lookup(ctx, p.ClientID)
	if err != nil {
		return authorize.Request{}, nil, err
	}
	r, err := authorize.Check(p, client)
	if pe, ok := errors.AsType[*authorize.PageError](err); ok {
		httplog.Logger(ctx).Info("authorization request refused", "reason", pe.Detail)
		resp := errorPage(http.StatusBadRequest, "This sign-in link is not valid", pe.Detail+" The app that sent you here may be misconfigured.")
		return r, &resp, nil
	}
	if e, ok := errors.AsType[*authorize.Error](err); ok {
		resp := response{location: r.ErrorURL(e, b.Issuer)}
		return r, &resp, nil
	}
	return r, nil, err
}

func (b Browser) authorize(ctx context.Context, p authorize.Params) (response, error) {
	r, refused, err := b.check(ctx, p)
	if err != nil || refused != nil {
		return deref(refused), err
	}
	now := b.Now()
	q := b.Queries
	br, signedIn, err := b.Sessions.BrowserOf(ctx, q, httplog.Cookie(ctx, b.Cookies.SessionName()))
	if err != nil {
		return response{}, err
	}
	if signedIn && r.Fresh(br.AuthTime, token.ACR(br.AMR), now) {
		return b.issue(ctx, r, br, nil, nil)
	}
	if r.None {
		return response{location: r.ErrorURL(&authorize.Error{Code: authorize.LoginRequired,
			Description: "The person is not signed in (or not recently enough), and prompt=none forbids asking."}, b.Issuer)}, nil
	}
	return b.signInPage(ctx, r, http.StatusOK, r.LoginHint, ""), nil
}

// signInPage is the sign-in page for r, with a CSRF token bound to the
// browser's CSRF cookie (set anew when it has none).
func (b Browser) signInPage(ctx context.Context, r authorize.Request, status int, email, message string) response {
	nonce, cookies := b.csrfNonce(ctx)
	v := r.Params.Values()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range v {
			if !yield(k) {
				return
			}
		}
	})
	hidden := make([]signin.Field, 0, len(keys))
	for _, k := range keys {
		hidden = append(hidden, signin.Field{Name: k, Value: v.Get(k)})
	}
	page := signin.RenderSignIn(status, signin.SignIn{
		Action: b.PublicURL + "/sign-in", Client: r.Client.Name, Email: email, Error: message,
		CSRF: b.CSRF.Token(nonce), Hidden: hidden, Forgot: b.PublicURL + "/forgot-password",
		SignUp: b.signUpURL(), PasskeyOptions: b.passkeyOptionsURL(),
	})
	return pageOf(page, cookies...)
}

// pwdOnly is the amr of a sign-in by password alone (RFC 8176).
var pwdOnly = []string{"pwd"}

// issue answers r for the browser session br with a code: it narrows the
// roles the request's scope names, records the session's use (and, when
// reauth is not nil, that the person just authenticated again, by the
// methods reauth), and redirects back with the code. cookies go with the
// redirect.
func (b Browser) issue(ctx context.Context, r authorize.Request, br sessions.Browser, reauth []string, cookies []*http.Cookie) (response, error) {
	var code string
	var refused *authorize.Error
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		u, err := q.GetSessionUser(ctx, br.UserID)
		if err != nil {
			return err
		}
		for _, role := range r.Scope.Roles {
			if !slices.Contains(u.Roles, role) {
				refused = &authorize.Error{Code: authorize.InvalidScope, Description: "The scope asks for the role " + strconv.Quote(role) + ", which the person does not hold."}
				return nil
			}
		}
		if br, err = b.Sessions.UseBrowser(ctx, q, br, reauth); err != nil {
			return err
		}
		code, err = authorize.Issue(ctx, q, authorize.Grant{
			ClientID: r.Client.ID, UserID: br.UserID, BrowserSession: br.ID, RedirectURI: r.RedirectURI,
			Challenge: r.Challenge, Scope: r.Scope, Nonce: r.Nonce, AuthTime: br.AuthTime, AMR: br.AMR,
		}, b.Now())
		return err
	})
	if err != nil {
		return response{}, err
	}
	if refused != nil {
		return response{location: r.ErrorURL(refused, b.Issuer), cookies: cookies}, nil
	}
	return response{location: r.CodeURL(code, b.Issuer), cookies: cookies}, nil
}

// SignIn is the sign-in page's form: on a good password it signs the
// browser in and sends it back to the client with a code.
func (b Browser) SignIn(ctx context.Context, req api.SignInRequestObject) (api.SignInResponseObject, error) {
	f := req.Body
	if f == nil {
		f = &api.SignInForm{}
	}
	r, refused, err := b.check(ctx, paramsOf(f))
	if err != nil || refused != nil {
		return deref(refused), err
	}
	email, pw := deref(f.Email), deref(f.Password)
	if !b.CSRF.Check(httplog.Cookie(ctx, b.Cookies.CSRFName()), deref(f.CsrfToken)) {
		// A form from another site, or one whose cookie expired: shown
		// again, with a fresh token, rather than processed.
		return b.signInPage(ctx, r, http.StatusBadRequest, email, "This form has expired. Please enter your password again."), nil
	}
	if f.Passkey != nil && f.MfaToken == nil {
		return b.passwordless(ctx, r, deref(f.PasskeyCeremony), *f.Passkey)
	}
	if f.MfaToken != nil {
		pr := proof{Ceremony: deref(f.PasskeyCeremony), Passkey: deref(f.Passkey)}
		if pr.Passkey == "" {
			pr = codeProof(deref(f.Code))
		}
		return b.secondStep(ctx, r, email, *f.MfaToken, pr)
	}
	if email == "" || pw == "" {
		return b.signInPage(ctx, r, http.StatusBadRequest, email, "Enter your email and password."), nil
	}
	user, err := b.checkPassword(ctx, email, pw)
	if err == nil {
		// The right password: the account's failures are forgiven, as a
		// password grant's 200 does, although the answer is a redirect.
		throttle.Succeeded(ctx)
	}
	if errors.Is(err, errBadCredentials) {
		return b.signInPage(ctx, r, http.StatusBadRequest, email, "The email or password is incorrect."), nil
	}
	if errors.Is(err, errUnverified) {
		return b.signInPage(ctx, r, http.StatusBadRequest, email, "Your email address is not verified yet. A mail with a link that verifies it is on its way: follow it, then sign in again."), nil
	}
	if e, ok := errors.AsType[*oauth.Error](err); ok && e.Status == http.StatusTooManyRequests {
		return nil, &problem.Error{Kind: problem.TooManyRequests, Detail: e.Description, Header: http.Header{"Retry-After": {"1"}}}
	}
	if err != nil {
		return nil, err
	}
	switch has, err := (Factors{b.Queries, b.Passkeys}).HasFactor(ctx, user.ID); {
	case err != nil:
		return nil, err
	case has:
		var tok string
		err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) (err error) {
			ua, addr := httplog.Client(ctx)
			tok, err = mfa.IssueChallenge(ctx, db.New(tx), user.ID,
				mfa.Challenge{AMR: pwdOnly, ClientID: browserChallenge, UserAgent: ua, ClientAddr: addr}, b.Now(), 0)
			return err
		})
		if err != nil {
			return nil, err
		}
		return b.secondStepPage(ctx, r, http.StatusOK, email, mfaToken(user.ID, tok), ""), nil
	}
	return b.signedInBrowser(ctx, r, user.ID, pwdOnly)
}

// browserChallenge is the client of the second steps of the sign-in page,
// which no client id can be: the token endpoint's second step refuses
// their mfa_token.
const browserChallenge = "@sign-in"

// secondStepPage asks for the second factor of the sign-in of email whose
// challenge is mfaToken.
func (b Browser) secondStepPage(ctx context.Context, r authorize.Request, status int, email, mfaToken, message string) response {
	nonce, cookies := b.csrfNonce(ctx)
	v := r.Params.Values()
	hidden := []signin.Field{{Name: "email", Value: email}, {Name: "mfa_token", Value: mfaToken}}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		hidden = append(hidden, signin.Field{Name: k, Value: v.Get(k)})
	}
	page := signin.SecondFactor{Action: b.PublicURL + "/sign-in", Client: r.Client.Name, Error: message, CSRF: b.CSRF.Token(nonce), Hidden: hidden}
	if id, _, _ := strings.Cut(mfaToken, "."); b.Passkeys != nil {
		// The account's id is the mfa_token's own; a wrong one only hides
		// or shows a button that would then find no passkey.
		if user, err := strconv.ParseInt(id, 10, 64); err == nil {
			if has, err := b.Passkeys.Has(ctx, b.Queries, user); err == nil && has {
				page.PasskeyOptions = b.passkeyOptionsURL()
			}
		}
	}
	return pageOf(signin.RenderSecondFactor(status, page), cookies...)
}

// codeProof is the proof of a code typed on the second step's page: an
// authenticator app's 6 digits, or else a recovery code.
func codeProof(code string) proof {
	if d := digits(code); len(d) == 6 && strings.Trim(d, "0123456789") == "" {
		return proof{OTP: d}
	}
	return proof{Recovery: code}
}

// secondStep is the sign-in page's second step: a code of the account's
// authenticator app, or a recovery code, for the challenge of mfaToken.
func (b Browser) secondStep(ctx context.Context, r authorize.Request, email, mfaToken string, pr proof) (response, error) {
	pr.Recovery = strings.TrimSpace(pr.Recovery)
	if pr == (proof{}) || pr.Passkey != "" && pr.Ceremony == "" {
		return b.secondStepPage(ctx, r, http.StatusBadRequest, email, mfaToken, "Enter the code your authenticator app shows, or a recovery code."), nil
	}
	id, tok, _ := strings.Cut(mfaToken, ".")
	ch, amr, err := b.secondFactor(ctx, id, tok, browserChallenge, pr)
	switch {
	case errors.Is(err, mfa.ErrInvalidCode):
		msg := "The code is not valid. Enter the code your authenticator app shows now, or an unused recovery code."
		if pr.Passkey != "" {
			msg = "The passkey was not accepted. Try again, or enter a code."
		}
		return b.secondStepPage(ctx, r, http.StatusBadRequest, email, mfaToken, msg), nil
	case errors.Is(err, mfa.ErrInvalidChallenge):
		return b.signInPage(ctx, r, http.StatusBadRequest, email, "This sign-in has expired or had too many wrong codes. Please enter your password again."), nil
	case err != nil:
		return response{}, err
	}
	throttle.Succeeded(ctx)
	return b.signedInBrowser(ctx, r, ch.UserID, amr)
}

// signedInBrowser signs the browser in as user, who has just
// authenticated by amr, and answers r with a code: the browser's
// session, if the same person is signed in already, is reauthenticated;
// otherwise a new one starts and any other ends.
func (b Browser) signedInBrowser(ctx context.Context, r authorize.Request, user int64, amr []string) (response, error) {
	q := b.Queries
	old, signedIn, err := b.Sessions.BrowserOf(ctx, q, httplog.Cookie(ctx, b.Cookies.SessionName()))
	if err != nil {
		return response{}, err
	}
	if signedIn && old.UserID == user {
		a := audit.Event{Type: audit.LoginSucceeded, SubjectUserID: user, Subject: "session:" + old.ID, Detail: "sign-in page, signed in again"}
		b.Audit.Record(ctx, a)
		return b.issue(ctx, r, old, amr, nil)
	}
	ua, addr := httplog.Client(ctx)
	var br sessions.Browser
	var cookie string
	err = pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if signedIn {
			if err := b.Sessions.EndIn(ctx, q, old.ID); err != nil {
				return err
			}
		}
		var err error
		br, cookie, err = b.Sessions.StartBrowser(ctx, q, user, sessions.Client{UserAgent: ua, Addr: addr, AMR: amr})
		return err
	})
	if err != nil {
		return response{}, err
	}
	if signedIn {
		b.Sessions.Sync(ctx)
		b.Audit.Record(ctx, audit.Event{Type: audit.SessionEnded, SubjectUserID: old.UserID, Subject: "session:" + old.ID, Detail: "another account signed in in the same browser"})
	}
	b.Audit.Record(ctx, audit.Event{Type: audit.LoginSucceeded, SubjectUserID: user, Subject: "session:" + br.ID, Detail: "sign-in page"})
	return b.issue(ctx, r, br, nil, []*http.Cookie{b.Cookies.Session(cookie, b.SessionTTL)})
}

// passkeyOptionsURL is where the pages' passkey buttons ask for a
// ceremony, or "" while passkeys are off.
func (b Browser) passkeyOptionsURL() string {
	if b.Passkeys == nil {
		return ""
	}
	return b.PublicURL + "/sign-in/passkey-options"
}

// signUpURL is the sign-up page's URL, or "" while sign-up is closed.
func (b Browser) signUpURL() string {
	if !b.SignUpOpen {
		return ""
	}
	return b.PublicURL + "/create-account"
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// passwordless signs the browser in with a passkey alone (a discoverable
// credential names its account): the assertion for ceremony, which the
// page's script got from SignInPasskeyOptions. A passkey verified with
// the person's PIN or biometrics is two factors (amr mfa), one only
// touched is one. A refused assertion shows the sign-in page again.
func (b Browser) passwordless(ctx context.Context, r authorize.Request, ceremony, assertion string) (response, error) {
	if b.Passkeys == nil || ceremony == "" {
		return b.signInPage(ctx, r, http.StatusBadRequest, "", "Passkeys are not available: enter your email and password."), nil
	}
	var user int64
	var c passkey.Credential
	var refused error
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) (err error) {
		user, c, err = b.Passkeys.FinishPasswordless(ctx, db.New(tx), ceremony, []byte(assertion))
		if errors.Is(err, passkey.ErrInvalid) {
			refused, err = err, nil // the ceremony stays used
		}
		return err
	})
	if err != nil {
		return response{}, err
	}
	var u db.GetSessionUserRow
	if refused == nil {
		u, err = b.Queries.GetSessionUser(ctx, user)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
			refused, err = errors.New("the passkey's account is gone or disabled"), nil
		}
		if err != nil {
			return response{}, err
		}
	}
	if refused != nil {
		httplog.Logger(ctx).Info("passkey sign-in refused", "reason", refused.Error())
		b.Audit.Record(ctx, audit.Event{Type: audit.LoginFailed, SubjectUserID: user, Detail: "passkey refused"})
		return b.signInPage(ctx, r, http.StatusBadRequest, "", "The passkey was not accepted. Try again, or enter your email and password."), nil
	}
	amr := passkey.AMR(c)
	if c.UserVerified {
		amr = append(amr, "mfa")
	}
	throttle.Succeeded(ctx)
	return b.signedInBrowser(ctx, r, u.ID, amr)
}

// SignInPasskeyOptions answers a passkey ceremony for the sign-in page's
// script: for a sign-in without a password, or, with the mfa_token of
// the page's second step, for the passkeys of that sign-in's account.
func (b Browser) SignInPasskeyOptions(ctx context.Context, req api.SignInPasskeyOptionsRequestObject) (api.SignInPasskeyOptionsResponseObject, error) {
	if b.Passkeys == nil {
		return nil, errPasskeysOff
	}
	var ceremony string
	var options json.RawMessage
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) (err error) {
		q := db.New(tx)
		if req.Body.MfaToken == nil {
			ceremony, options, err = b.Passkeys.BeginPasswordless(ctx, q)
			return err
		}
		id, tok, _ := strings.Cut(*req.Body.MfaToken, ".")
		ch, err := mfa.LookupChallenge(ctx, q, tok, b.Now())
		if err != nil {
			return err
		}
		if strconv.FormatInt(ch.UserID, 10) != id || ch.ClientID != browserChallenge {
			return mfa.ErrInvalidChallenge
		}
		ceremony, options, err = b.Passkeys.BeginLogin(ctx, q, ch.UserID)
		return err
	})
	switch {
	case errors.Is(err, mfa.ErrInvalidChallenge):
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "The sign-in has expired: enter your password again.",
			Fields: []api.FieldError{{Field: "body.mfa_token", Message: "is not valid"}}}
	case errors.Is(err, passkey.ErrNoPasskeys):
		return nil, problem.New(problem.NotFound, "The account has no passkey.")
	case err != nil:
		return nil, err
	}
	opts, err := ceremonyOptions(options)
	if err != nil {
		return nil, err
	}
	return api.SignInPasskeyOptions200JSONResponse{Body: api.PasskeyCeremony{Ceremony: ceremony, Options: opts},
		Headers: api.SignInPasskeyOptions200ResponseHeaders{CacheControl: "no-store"}}, nil
}
