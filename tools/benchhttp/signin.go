package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// signInCallback is the redirect URI of the bench's client, a public one
// (an app in the browser, as the TypeScript SDK's sign-in is). Nothing
// listens there: the browser stops at the redirect, whose Location holds
// the code.
const signInCallback = "http://127.0.0.1:9/callback"

// flow is a way to sign in: one complete login, whatever it takes.
type flow int

const (
	// passwordFlow is the password grant, as a script or the SDKs'
	// login does it: one POST /token.
	passwordFlow flow = iota
	// codeFlow is what a browser and its app do: GET /authorize (the
	// sign-in page), POST /sign-in (the password, the browser session and
	// the code), then the app's POST /token (the code for tokens, with the
	// PKCE verifier).
	codeFlow
)

func (f flow) String() string { return [...]string{"password grant", "code flow"}[f] }

// signInRun is one flow's sign-ins at one concurrency, over its blocks.
type signInRun struct {
	latencies  []time.Duration   // of each complete sign-in that succeeded
	steps      [][]time.Duration // of each, its requests' (the code flow's three)
	failed     int
	firstErr   error
	wall       time.Duration // the blocks' time, start to last answer
	cpu, dbCPU time.Duration // rolegate's, and of that its PostgreSQL's
}

// quantile is the nearest-rank quantile q of the latencies: with 20
// sign-ins, p99 is the slowest.
func (r signInRun) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	v := slices.Sorted(slices.Values(r.latencies))
	return v[max(0, int(math.Ceil(q*float64(len(v))))-1)]
}

// stepQuantile is the nearest-rank quantile q of the latencies of the
// sign-ins' i-th request.
func (r signInRun) stepQuantile(i int, q float64) time.Duration {
	var v signInRun
	for _, s := range r.steps {
		v.latencies = append(v.latencies, s[i])
	}
	return v.quantile(q)
}

// rate is the sign-ins that succeeded per second of the blocks' time.
func (r signInRun) rate() float64 { return float64(len(r.latencies)) / max(r.wall.Seconds(), 1e-9) }

// cpuPer is rolegate's CPU time per sign-in that succeeded.
func (r signInRun) cpuPer() time.Duration { return r.cpu / time.Duration(max(1, len(r.latencies))) }

// dbCPUPer is its PostgreSQL's part of cpuPer.
func (r signInRun) dbCPUPer() time.Duration { return r.dbCPU / time.Duration(max(1, len(r.latencies))) }

// signInFigures are the sign-ins of both flows, one at a time and conc
// at once, n of each.
type signInFigures struct {
	n, conc int
	// runs are by concurrency (one at a time, then conc at once), then by
	// flow.
	runs [2][2]signInRun
}

// signIns measures complete sign-ins through both flows against rolegate:
// n of each one at a time, then n of each with conc sign-ins at once.
// Each flow's sign-ins run in two blocks in the order password, code,
// code, password, so that the machine drifting during the run weighs on
// both alike; rolegate's CPU time is read from /proc around each block.
// Every sign-in is a new browser (an empty cookie jar: no single sign-on)
// and signs in one of the seeded accounts in turn; each concurrent one
// comes from an address of its own behind the trusted proxy, as
// different people's would, so that no one address's limit on passwords
// hashed at once is what is measured.
func signIns(ctx context.Context, rg *process, s seeded, n, conc int) (signInFigures, error) {
	f := signInFigures{n: max(2, n), conc: max(1, conc)}
	sg := newSigner(rg, s.clientID)
	defer sg.transport.CloseIdleConnections()
	// A first sign-in of each: connections, prepared statements.
	for _, fl := range []flow{passwordFlow, codeFlow} {
		if _, err := sg.signIn(ctx, fl, "10.9.0.1", userEmail); err != nil {
			return f, fmt.Errorf("warm-up sign-in: %w", err)
		}
	}
	for i, c := range []int{1, f.conc} {
		for b, fl := range []flow{passwordFlow, codeFlow, codeFlow, passwordFlow} {
			count := f.n / 2
			if b >= 2 {
				count = f.n - f.n/2
			}
			sg.block(ctx, fl, count, c, &f.runs[i][fl])
		}
		for fl, r := range f.runs[i] {
			if len(r.latencies) == 0 {
				return f, fmt.Errorf("every sign-in through the %s, %d at once, failed: %w", flow(fl), c, r.firstErr)
			}
		}
	}
	return f, ctx.Err()
}

// signer signs people in to rolegate as the bench's client.
type signer struct {
	rg        *process
	transport *http.Transport
	code      oauth2.Config // the bench's public client
	password  oauth2.Config // no client: rolegate's own, the password grant's
}

func newSigner(rg *process, clientID string) *signer {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &signer{
		rg: rg, transport: t,
		code: oauth2.Config{
			ClientID: clientID, RedirectURL: signInCallback, Scopes: []string{"openid", "email"},
			Endpoint: oauth2.Endpoint{AuthURL: rg.url("/authorize"), TokenURL: rg.url("/token"), AuthStyle: oauth2.AuthStyleInParams},
		},
		password: oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: rg.url("/token"), AuthStyle: oauth2.AuthStyleInParams}},
	}
}

// block runs count sign-ins of fl, conc at once, adding them to r.
func (sg *signer) block(ctx context.Context, fl flow, count, conc int, r *signInRun) {
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	before := treeCPU(sg.rg.pid())
	start := time.Now()
	for w := range conc {
		addr := fmt.Sprintf("10.9.%d.%d", conc, w+1)
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= count || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				steps, err := sg.signIn(ctx, fl, addr, account(i))
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
				} else {
					r.latencies = append(r.latencies, d)
					r.steps = append(r.steps, steps)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.wall += time.Since(start)
	after := treeCPU(sg.rg.pid())
	r.cpu += after.all - before.all
	r.dbCPU += after.children - before.children
}

// account is the email of the i-th seeded account (the bench user's
// password is every seeded user's).
func account(i int) string {
	if i%seedUsers == seedUsers-1 {
		return userEmail
	}
	return fmt.Sprintf("user%d@example.com", i%seedUsers)
}

// signIn signs email in through fl, its requests coming from addr (as
// X-Forwarded-For), and checks that it ends with the tokens it should. It
// returns how long each request took, from sending it to its answer read.
func (sg *signer) signIn(ctx context.Context, fl flow, addr, email string) ([]time.Duration, error) {
	client := &http.Client{Transport: forwardedFor{sg.transport, addr}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	var steps []time.Duration
	t := time.Now()
	lap := func() {
		now := time.Now()
		steps, t = append(steps, now.Sub(t)), now
	}
	if fl == passwordFlow {
		tok, err := sg.password.PasswordCredentialsToken(ctx, email, userPassword)
		if err != nil {
			return nil, fmt.Errorf("password grant: %w", err)
		}
		if tok.AccessToken == "" {
			return nil, errors.New("password grant: no access token")
		}
		lap()
		return steps, nil
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	browser := &http.Client{Transport: client.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	authURL := sg.code.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))
	status, _, page, err := visit(ctx, browser, "GET", authURL, nil)
	if err != nil {
		return nil, err
	}
	lap()
	action, form, err := signInForm(status, page)
	if err != nil {
		return nil, err
	}
	form.Set("email", email)
	form.Set("password", userPassword)
	t = time.Now()
	status, loc, page, err := visit(ctx, browser, "POST", action, form)
	if err != nil {
		return nil, err
	}
	lap()
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, signInCallback+"?") {
		return nil, fmt.Errorf("POST /sign-in = %d Location %q, want a redirect to %s: %.200s", status, loc, signInCallback, page)
	}
	back, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	q := back.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return nil, fmt.Errorf("back at the client with %v, want a code and state %q", q, state)
	}
	t = time.Now()
	tok, err := sg.code.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	lap()
	if id, _ := tok.Extra("id_token").(string); tok.AccessToken == "" || id == "" {
		return nil, errors.New("code exchange: no access token or id token")
	}
	return steps, nil
}

// forwardedFor sends every request as from addr, behind the trusted proxy
// (loopback).
type forwardedFor struct {
	base http.RoundTripper
	addr string
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.base.RoundTrip(r)
}

// visit sends a browser's request (a form when form is set) and reads the
// answer: its status, Location and body.
func visit(ctx context.Context, browser *http.Client, method, u string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := browser.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), err
}

// The sign-in page's form, as handlers/signin_test.go reads it.
var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// signInForm reads the sign-in page: where its form posts, and its hidden
// fields (the authorization request and the CSRF token).
func signInForm(status int, page string) (string, url.Values, error) {
	m := formAction.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		return "", nil, fmt.Errorf("GET /authorize = %d, not the sign-in page: %.200s", status, page)
	}
	v := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	if v.Get("csrf_token") == "" {
		return "", nil, errors.New("the sign-in page's form has no csrf_token")
	}
	return html.UnescapeString(m[1]), v, nil
}
