package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
)

// chromiumTab starts headless Chromium with a virtual authenticator
// (the DevTools protocol's WebAuthn domain: CTAP2, internal, resident
// keys, user verification that succeeds) and returns its tab, at page;
// the test is skipped without Chromium, which .ci/run installs.
func chromiumTab(t *testing.T, page string) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if _, serr := os.Stat("/usr/bin/chromium"); serr == nil {
		chromium, err = "/usr/bin/chromium", nil
	}
	if err != nil {
		t.Skip("chromium not found: install Debian's chromium package to run the passkey browser test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // the tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	err = chromedp.Do(tab, chromedp.Navigate(page), chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		if _, err := cdp.Call(ctx, target, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, target, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
		return err
	}))
	if err != nil {
		t.Fatalf("starting %s with a virtual authenticator: %v", chromium, err)
	}
	return tab
}

// js runs the async function body script in the tab and decodes what it
// returns.
func js(t *testing.T, tab context.Context, script string) map[string]any {
	t.Helper()
	out, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any]("(async () => {"+script+"})()", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("in the browser: %v", err)
	}
	return out
}

// arrival waits until the tab is at a URL under prefix, and sets at to it.
func arrival(prefix string, at *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for {
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil {
				return err
			}
			if strings.HasPrefix(loc, prefix) {
				*at = loc
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the page stayed at %s", loc)
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// TestPasskeyInBrowser registers a passkey through the API from a real
// browser (Chromium's virtual authenticator), then logs in with the
// password and the passkey as the second factor: the mfa_required answer
// carries the passkey's options, navigator.credentials.get() answers
// them, and the mfa grant's tokens say so (amr, acr). The factors list
// it, without key material.
func TestPasskeyInBrowser(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{Localhost: true})
	u := e.CreateUser(t, "kate@example.com", "user")
	tab := chromiumTab(t, e.URL+"/healthz")
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	reg := js(t, tab, `
		const h = {"Authorization": "Bearer " + `+q(e.Token(t, u))+`, "Content-Type": "application/json"};
		const begin = await fetch("/identify/me/mfa/passkey-registration", {method: "POST", headers: h});
		const b = await begin.json();
		if (begin.status !== 200) return {step: "begin", status: begin.status, body: b};
		const cred = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(b.options)});
		const r = await fetch("/identify/me/mfa/passkeys", {method: "POST", headers: h,
			body: JSON.stringify({ceremony: b.ceremony, name: "Laptop", credential: cred.toJSON()})});
		return {step: "finish", status: r.status, body: await r.json()};`)
	if reg["status"] != float64(201) || reg["body"].(map[string]any)["name"] != "Laptop" {
		t.Fatalf("registration: %v", reg)
	}

	login := js(t, tab, `
		const form = (o) => new URLSearchParams(o);
		const first = await fetch("/token", {method: "POST", body: form({grant_type: "password", username: `+q(u.Email)+`, password: `+q(u.Password)+`})});
		const m = await first.json();
		if (m.error !== "mfa_required" || !m.passkey_options) return {step: "password", status: first.status, body: m};
		const a = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(m.passkey_options)});
		const second = await fetch("/token", {method: "POST", body: form({grant_type: "urn:rolegate:grant-type:mfa",
			mfa_token: m.mfa_token, passkey_ceremony: m.passkey_ceremony, passkey: JSON.stringify(a.toJSON())})});
		const again = await fetch("/token", {method: "POST", body: form({grant_type: "urn:rolegate:grant-type:mfa",
			mfa_token: m.mfa_token, passkey_ceremony: m.passkey_ceremony, passkey: JSON.stringify(a.toJSON())})});
		return {step: "passkey", status: second.status, body: await second.json(), again: again.status};`)
	body, _ := login["body"].(map[string]any)
	access, _ := body["access_token"].(string)
	if login["status"] != float64(200) || access == "" {
		t.Fatalf("login with the passkey: %v", login)
	}
	if login["again"] != float64(400) {
		t.Errorf("the same assertion again: %v, want 400", login["again"])
	}
	c := jwtPayload(t, access)
	if amr := fmt.Sprint(c["amr"]); c["acr"] != "urn:rolegate:acr:mfa" || !strings.Contains(amr, "pwd") || !strings.Contains(amr, "wk") || !strings.Contains(amr, "mfa") {
		t.Errorf("claims after the passkey: amr %v acr %v", c["amr"], c["acr"])
	}
	f := do(t, "GET", e.URL+"/identify/me/mfa", nil, bearer(access))
	keys, _ := f.json(t)["passkeys"].([]any)
	if f.status != 200 || len(keys) != 1 || strings.Contains(f.body, "public_key") {
		t.Errorf("factors: %d %s", f.status, f.body)
	}

	// The hosted sign-in page, without a password: its passkey button
	// signs in with the discoverable credential and goes back to the
	// client with a code, whose tokens are the passkey's account's.
	verifier := oauth2.GenerateVerifier()
	redirect := e.URL + "/docs/oauth2-redirect.html"
	authURL := e.URL + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"rolegate-docs"}, "redirect_uri": {redirect},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}, "state": {"st"}, "scope": {"openid"}}.Encode()
	var back string
	err := chromedp.Do(tab,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.CSS(`button[data-passkey-options]`)),
		chromedp.Click(chromedp.CSS(`button[data-passkey-options]`)),
		arrival(redirect, &back))
	if err != nil {
		t.Fatalf("signing in with the passkey on the page: %v", err)
	}
	exchange := func(back string) map[string]any {
		cb, _ := url.Parse(back)
		r := do(t, "POST", e.URL+"/token", form("grant_type", "authorization_code", "code", cb.Query().Get("code"), "redirect_uri", redirect,
			"client_id", "rolegate-docs", "code_verifier", verifier), map[string]string{"Content-Type": formCT})
		return jwtPayload(t, tokensOf(t, r).access)
	}
	if p := exchange(back); p["sub"] != fmt.Sprint(u.ID) || p["acr"] != "urn:rolegate:acr:mfa" || !strings.Contains(fmt.Sprint(p["amr"]), "user") {
		t.Errorf("tokens of the passkey sign-in: %v", p)
	}

	// With the password (prompt=login), the page's second step offers the
	// passkey, which finishes the sign-in.
	back = ""
	err = chromedp.Do(tab,
		chromedp.Navigate(authURL+"&prompt=login"),
		chromedp.WaitVisible(chromedp.CSS(`#password`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), u.Password),
		chromedp.Click(chromedp.CSS(`form:not(#passkey-form) button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#code`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-passkey-options]`)),
		chromedp.Click(chromedp.CSS(`button[data-passkey-options]`)),
		arrival(redirect, &back))
	if err != nil {
		t.Fatalf("the second step with the passkey on the page: %v", err)
	}
	if p := exchange(back); p["acr"] != "urn:rolegate:acr:mfa" || !strings.Contains(fmt.Sprint(p["amr"]), "pwd") {
		t.Errorf("tokens of the password and passkey sign-in: %v", p)
	}
}
