package handlers_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
)

// mailTokenRE finds the token of a mail's link to one of the pages of
// the self-service flows, by the link alone: the mails' wording may
// change, their links' paths and token parameter are the API.
var mailTokenRE = regexp.MustCompile(`/(verify-email|reset-password|change-email)\?token=([A-Za-z0-9_-]+)`)

// TestAccountsThroughGoSDK runs the self-service flows through the
// generated Go client's typed methods, against a live server with sign-up
// open and a real SMTP server taking its mail: sign-up, verification (a
// newer link voiding the older, a used one refused), a forgotten
// password, and a move to another address, each confirmed with the token
// of the link its mail carried. Every request and answer is checked
// against the spec as well.
func TestAccountsThroughGoSDK(t *testing.T) {
	t.Parallel()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: smtp.URL(), SignUp: true})
	c, err := api.NewClientWithResponses(e.URL, api.WithHTTPClient(apitest.HTTPClient(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const (
		addr     = "sdk-person@example.com"
		moved    = "sdk-moved@example.org"
		password = "correct horse battery staple"
		newPass  = "a much longer passphrase"
	)

	// mail waits for the nth mail (from 1) and returns it.
	mail := func(n int) mailtest.Received {
		t.Helper()
		return smtp.Wait(t, n, 10*time.Second)[n-1]
	}
	// tokenOf is the token of m's link to page; m must go to to.
	tokenOf := func(m mailtest.Received, to, page string) string {
		t.Helper()
		if !slices.Equal(m.To, []string{to}) {
			t.Fatalf("a mail to %v, want %s:\n%s", m.To, to, m.Text)
		}
		got := mailTokenRE.FindStringSubmatch(m.Text)
		if got == nil || got[1] != page {
			t.Fatalf("no link to /%s?token= in the mail to %v:\n%s", page, m.To, m.Text)
		}
		return got[2]
	}
	bearer := func(access string) api.RequestEditorFn {
		return func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+access)
			return nil
		}
	}
	login := func(email, pw string) *api.CreateTokenResponse {
		t.Helper()
		grant := "password"
		r, err := c.CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{GrantType: &grant, Username: &email, Password: &pw})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	signIn := func(email, pw string) string {
		t.Helper()
		r := login(email, pw)
		if r.JSON200 == nil || r.JSON200.AccessToken == "" {
			t.Fatalf("login as %s = %d %s", email, r.StatusCode(), r.Body)
		}
		return r.JSON200.AccessToken
	}
	refused := func(email, pw string) {
		t.Helper()
		if r := login(email, pw); r.StatusCode() != 400 || r.JSON400 == nil || r.JSON400.Error != "invalid_grant" {
			t.Errorf("login as %s = %d %s, want 400 invalid_grant", email, r.StatusCode(), r.Body)
		}
	}
	me := func(access string) *api.GetMeResponse {
		t.Helper()
		r, err := c.GetMeWithResponse(ctx, bearer(access))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	accepted := func(what string, status int, a *api.Accepted, body []byte) {
		t.Helper()
		if status != 202 || a == nil || a.Message == "" {
			t.Fatalf("%s = %d %s, want 202 and a message", what, status, body)
		}
	}
	// invalidLink checks the typed 400 of a token that no longer works:
	// an RFC 9457 problem naming body.token, with the request id.
	invalidLink := func(what string, status int, hdr http.Header, p *api.BadRequest, body []byte) {
		t.Helper()
		if status != 400 || p == nil {
			t.Errorf("%s = %d %s, want a 400 problem", what, status, body)
			return
		}
		if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
		if p.Status != 400 || p.Type == "" || p.Title == "" || p.Detail == nil || *p.Detail == "" ||
			p.RequestId == nil || *p.RequestId != hdr.Get("X-Request-Id") || *p.RequestId == "" {
			t.Errorf("%s: the problem %s", what, body)
		}
		if p.Errors == nil || !slices.ContainsFunc(*p.Errors, func(f api.FieldError) bool { return f.Field == "body.token" }) {
			t.Errorf("%s: the problem names no body.token: %s", what, body)
		}
	}

	// Sign-up: 202, and a mail with a link that verifies the address.
	up, err := c.SignUpWithResponse(ctx, api.SignUpJSONRequestBody{Email: addr, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	accepted("POST /signup", up.StatusCode(), up.JSON202, up.Body)
	first := tokenOf(mail(1), addr, "verify-email")

	// The account signs in before its address is proved, and asks for
	// another link, which voids the first.
	access := signIn(addr, password)
	who := me(access)
	if who.JSON200 == nil || who.JSON200.Email == nil || *who.JSON200.Email != addr || !slices.Equal(who.JSON200.Roles, []string{"user"}) {
		t.Fatalf("GET /identify/me after sign-up = %d %s", who.StatusCode(), who.Body)
	}
	ask, err := c.RequestEmailVerificationWithResponse(ctx, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	accepted("POST /identify/me/email-verification", ask.StatusCode(), ask.JSON202, ask.Body)
	second := tokenOf(mail(2), addr, "verify-email")
	if second == first {
		t.Fatal("the second verification mail has the first one's token")
	}
	v, err := c.ConfirmEmailVerificationWithResponse(ctx, api.ConfirmEmailVerificationJSONRequestBody{Token: first})
	if err != nil {
		t.Fatal(err)
	}
	invalidLink("the voided verification link", v.StatusCode(), v.HTTPResponse.Header, v.ApplicationproblemJSON400, v.Body)
	v, err = c.ConfirmEmailVerificationWithResponse(ctx, api.ConfirmEmailVerificationJSONRequestBody{Token: second})
	if err != nil {
		t.Fatal(err)
	}
	if v.StatusCode() != 204 {
		t.Fatalf("POST /email-verification/confirm = %d %s, want 204", v.StatusCode(), v.Body)
	}
	v, err = c.ConfirmEmailVerificationWithResponse(ctx, api.ConfirmEmailVerificationJSONRequestBody{Token: second})
	if err != nil {
		t.Fatal(err)
	}
	invalidLink("the verification link a second time", v.StatusCode(), v.HTTPResponse.Header, v.ApplicationproblemJSON400, v.Body)
	// Verified now: the same 202, and no mail (counted at the end).
	ask, err = c.RequestEmailVerificationWithResponse(ctx, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	accepted("POST /identify/me/email-verification once verified", ask.StatusCode(), ask.JSON202, ask.Body)

	// A forgotten password: the mail's token and a new password; the
	// session from before ends, the old password fails, the new one works.
	reset, err := c.RequestPasswordResetWithResponse(ctx, api.RequestPasswordResetJSONRequestBody{Email: addr})
	if err != nil {
		t.Fatal(err)
	}
	accepted("POST /password-reset", reset.StatusCode(), reset.JSON202, reset.Body)
	resetTok := tokenOf(mail(3), addr, "reset-password")
	done, err := c.ConfirmPasswordResetWithResponse(ctx, api.ConfirmPasswordResetJSONRequestBody{Token: resetTok, NewPassword: newPass})
	if err != nil {
		t.Fatal(err)
	}
	if done.StatusCode() != 204 {
		t.Fatalf("POST /password-reset/confirm = %d %s, want 204", done.StatusCode(), done.Body)
	}
	if r := me(access); r.StatusCode() != 401 || r.ApplicationproblemJSON401 == nil {
		t.Errorf("GET /identify/me with a token from before the reset = %d %s, want 401", r.StatusCode(), r.Body)
	}
	refused(addr, password)
	access = signIn(addr, newPass)
	done, err = c.ConfirmPasswordResetWithResponse(ctx, api.ConfirmPasswordResetJSONRequestBody{Token: resetTok, NewPassword: "yet another long passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	invalidLink("the reset link a second time", done.StatusCode(), done.HTTPResponse.Header, done.ApplicationproblemJSON400, done.Body)

	// A move to another address: the new one gets the link, the old one a
	// notice without it; once confirmed, the account signs in with the new
	// address only, and the token from before is refused.
	change, err := c.RequestEmailChangeWithResponse(ctx, api.RequestEmailChangeJSONRequestBody{NewEmail: moved, Password: newPass}, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	accepted("POST /identify/me/email", change.StatusCode(), change.JSON202, change.Body)
	mail(5)
	byTo := map[string]mailtest.Received{}
	for _, m := range smtp.Received()[3:5] {
		byTo[m.To[0]] = m
	}
	changeTok := tokenOf(byTo[moved], moved, "change-email")
	if notice, ok := byTo[addr]; !ok || mailTokenRE.MatchString(notice.Text) {
		t.Errorf("the old address's notice (sent %v): %q, want one without a link", ok, notice.Text)
	}
	moveDone, err := c.ConfirmEmailChangeWithResponse(ctx, api.ConfirmEmailChangeJSONRequestBody{Token: changeTok})
	if err != nil {
		t.Fatal(err)
	}
	if moveDone.StatusCode() != 204 {
		t.Fatalf("POST /email-change/confirm = %d %s, want 204", moveDone.StatusCode(), moveDone.Body)
	}
	if r := me(access); r.StatusCode() != 401 || r.ApplicationproblemJSON401 == nil {
		t.Errorf("GET /identify/me with a token of the old address = %d %s, want 401", r.StatusCode(), r.Body)
	}
	refused(addr, newPass)
	who = me(signIn(moved, newPass))
	if who.JSON200 == nil || who.JSON200.Email == nil || *who.JSON200.Email != moved {
		t.Errorf("GET /identify/me after the move = %d %s, want %s", who.StatusCode(), who.Body, moved)
	}
	moveDone, err = c.ConfirmEmailChangeWithResponse(ctx, api.ConfirmEmailChangeJSONRequestBody{Token: changeTok})
	if err != nil {
		t.Fatal(err)
	}
	invalidLink("the email change link a second time", moveDone.StatusCode(), moveDone.HTTPResponse.Header, moveDone.ApplicationproblemJSON400, moveDone.Body)

	// Five mails in all: none for the verification asked once verified.
	if got := smtp.Received(); len(got) != 5 {
		t.Errorf("%d mails, want 5:", len(got))
		for _, m := range got {
			t.Logf("to %v: %s", m.To, m.Subject)
		}
	}
}
