// Package signin renders the hosted sign-in pages (server-rendered HTML
// that works without JavaScript and loads nothing from elsewhere) and keeps
// their cookies: the sign-in cookie that names a browser session, and the
// CSRF cookie whose HMAC the pages' forms carry.
package signin

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed pages.html
var pagesHTML string

//go:embed style.css
var styleCSS string

//go:embed passkey.js
var passkeyJS string

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"style":   func() template.CSS { return template.CSS(styleCSS) },
	"passkey": func() template.JS { return template.JS(passkeyJS) },
}).Parse(pagesHTML))

// CSP is the Content-Security-Policy of every page: nothing loads from
// anywhere, the one style sheet and the one script (the passkey buttons')
// are inline (allowed by their hashes), the script may call rolegate
// alone, and no page may be framed. It sets no form-action: browsers apply that to the
// redirect a form's answer is, and the sign-in form's answer redirects to
// the client; the forms' actions are rolegate's own URLs, fixed by the
// server.
var CSP = "default-src 'none'; style-src '" + hash(styleCSS) + "'; script-src '" + hash(passkeyJS) + "'; connect-src 'self'; img-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// hash is the CSP source of an inline element's text.
func hash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Cookies names and sets the pages' cookies for a public URL.
type Cookies struct {
	// Secure is true when the public URL is https: the cookies are then
	// Secure and __Host- prefixed (path /, no domain).
	Secure bool
	// Path is the public URL's path ("" or "/..."); with __Host- it must
	// be /, so a path applies only without https.
	Path string
}

// NewCookies returns the cookies for publicURL.
func NewCookies(publicURL string) Cookies {
	u, err := url.Parse(publicURL)
	if err != nil {
		return Cookies{}
	}
	return Cookies{Secure: u.Scheme == "https", Path: strings.TrimSuffix(u.Path, "/")}
}

func (c Cookies) name(base string) string {
	if c.Secure {
		return "__Host-" + base
	}
	return base
}

func (c Cookies) path() string {
	if c.Secure || c.Path == "" {
		return "/"
	}
	return c.Path + "/"
}

// SessionName and CSRFName are the cookies' names.
func (c Cookies) SessionName() string { return c.name("rolegate_session") }

// CSRFName is the CSRF cookie's name.
func (c Cookies) CSRFName() string { return c.name("rolegate_csrf") }

// Session is the sign-in cookie naming a browser session, for as long as
// the session may live (maxAge), or its removal when value is "".
func (c Cookies) Session(value string, maxAge time.Duration) *http.Cookie {
	return c.cookie(c.SessionName(), value, maxAge)
}

// CSRF is the cookie a page's CSRF token is bound to.
func (c Cookies) CSRF(value string) *http.Cookie {
	return c.cookie(c.CSRFName(), value, time.Hour)
}

func (c Cookies) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	k := &http.Cookie{Name: name, Value: value, Path: c.path(), HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(maxAge / time.Second)}
	if value == "" {
		k.MaxAge = -1
	}
	return k
}

// NewNonce returns a random value for the CSRF cookie.
func NewNonce() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CSRF makes and checks the pages' CSRF tokens: the HMAC of the CSRF
// cookie's nonce under a key every replica shares, so that a form posted
// from another site, which cannot read the cookie, carries no valid token.
type CSRF struct{ Key []byte }

// Token returns the token for nonce.
func (c CSRF) Token(nonce string) string {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte("rolegate csrf\x00"))
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Check reports, in constant time, whether token is nonce's.
func (c CSRF) Check(nonce, token string) bool {
	if nonce == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Token(nonce)), []byte(token)) == 1
}

// Field is a hidden field of a form.
type Field struct{ Name, Value string }

// SignIn is what the sign-in page shows.
type SignIn struct {
	// Action is where the form posts (the sign-in operation's URL).
	Action string
	// Client is the name of the app the person signs in to.
	Client string
	Email  string
	// Error is the message for a refused attempt, "" for none.
	Error string
	CSRF  string
	// Hidden are the authorization request's parameters.
	Hidden []Field
	// Forgot is the URL of the forgotten-password page.
	Forgot string
	// SignUp is the URL of the sign-up page; "" while sign-up is closed.
	SignUp string
	// PasskeyOptions is where the passkey button asks for a ceremony; ""
	// while passkeys are off.
	PasskeyOptions string
}

// SecondFactor is the sign-in page's second step, for an account with a
// second factor.
type SecondFactor struct {
	Action string
	// Client is the name of the app the person signs in to.
	Client string
	// Error is the message for a refused code, "" for none.
	Error string
	CSRF  string
	// Hidden are the authorization request's parameters, the email and
	// the mfa_token of the first step.
	Hidden []Field
	// PasskeyOptions is where the passkey button asks for a ceremony; ""
	// when the account has no passkey.
	PasskeyOptions string
}

// RenderSecondFactor renders the second step.
func RenderSecondFactor(status int, s SecondFactor) Page { return render(status, "second", s) }

// SignUp is the sign-up page.
type SignUp struct {
	Action, CSRF, Email string
	// Error is the message for a refused attempt, "" for none.
	Error string
}

// RenderSignUp renders the sign-up page.
func RenderSignUp(status int, s SignUp) Page { return render(status, "signup", s) }

// Message is what an error or information page shows.
type Message struct {
	Title, Text string
}

// Confirm is the logout confirmation page.
type Confirm struct {
	Action string
	CSRF   string
	Hidden []Field
}

// Reset is the page of a reset mail's link.
type Reset struct {
	Action, Token string
	// Error is the message for a refused attempt, "" for none.
	Error string
}

// Forgot is the forgotten-password page.
type Forgot struct{ Action, CSRF string }

// RenderForgot renders the forgotten-password page.
func RenderForgot(f Forgot) Page { return render(http.StatusOK, "forgot", f) }

// Verify is the page of a mail's link that proves an address: a button
// that posts the token. Title, Lead and Button default to the
// verification mail's.
type Verify struct{ Action, Token, Title, Lead, Button string }

// RenderVerify renders the verification page.
func RenderVerify(v Verify) Page {
	if v.Title == "" {
		v.Title, v.Lead, v.Button = "Verify your address", "Confirm that this mail's address is the address of your account.", "Verify my address"
	}
	return render(http.StatusOK, "verify", v)
}

// RenderReset renders the reset page.
func RenderReset(status int, r Reset) Page { return render(status, "reset", r) }

// Page is a rendered page and its status.
type Page struct {
	Status int
	Body   []byte
}

// RenderSignIn renders the sign-in page.
func RenderSignIn(status int, p SignIn) Page { return render(status, "signin", p) }

// RenderMessage renders an error or information page.
func RenderMessage(status int, m Message) Page { return render(status, "message", m) }

// RenderConfirm renders the logout confirmation page.
func RenderConfirm(c Confirm) Page { return render(http.StatusOK, "confirm", c) }

func render(status int, name string, data any) Page {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		// The templates are fixed and their data plain: a failure is a bug.
		panic("signin: rendering " + name + ": " + err.Error())
	}
	return Page{Status: status, Body: b.Bytes()}
}

// Write sends p with the headers every page has: never cached, never
// framed, nothing loaded from elsewhere, no referrer.
func Write(w http.ResponseWriter, p Page, cookies ...*http.Cookie) error {
	h := private(w, cookies)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(p.Status)
	_, err := w.Write(p.Body)
	return err
}

// Redirect sends the browser to location, never cached, setting cookies:
// with 302 Found, or, after a POST, which may have carried a password,
// with status 303 See Other, which browsers follow with a GET that carries
// no body (RFC 9700 section 4.12).
func Redirect(w http.ResponseWriter, status int, location string, cookies ...*http.Cookie) error {
	private(w, cookies).Set("Location", location)
	w.WriteHeader(status)
	return nil
}

// private sets what every answer of the pages has, never cached and
// sending no referrer, and cookies; it returns the headers.
func private(w http.ResponseWriter, cookies []*http.Cookie) http.Header {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	for _, c := range cookies {
		http.SetCookie(w, c)
	}
	return h
}
