package handlers_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
	"golang.org/x/oauth2"
)

var resetLink = regexp.MustCompile(`https?://\S+/reset-password\?token=[A-Za-z0-9_-]+`)

// recoveryEnv is rolegate with a real SMTP server in-process taking its
// mail, and an account with a live session.
func recoveryEnv(t *testing.T) (*apitest.Env, *mailtest.Server, apitest.User) {
	t.Helper()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: smtp.URL()})
	return e, smtp, e.CreateUser(t, "kate@example.com", "user")
}

// TestPasswordReset: the flow end to end from the mail's link, through
// the pages a person with only a mail client and a browser uses; then the
// new password signs in, the old one and the old tokens fail, and the
// address is verified.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e, smtp, u := recoveryEnv(t)
	old := loginTokens(t, e, u)
	browser := newBrowser(t)

	// The forgotten-password page, linked from the sign-in page, mails
	// the link.
	pg := browserGet(t, browser, e.URL+"/forgot-password")
	v := hiddenFields(pg.body)
	v.Set("email", "KATE@example.com") // found by its canonical form
	sent := browserPost(t, browser, e.URL+"/forgot-password", v)
	if sent.status != 200 || !strings.Contains(sent.body, "If an account has this address") {
		t.Fatalf("forgot-password form = %d %s", sent.status, sent.body)
	}
	msgs := smtp.Wait(t, 1, 10*time.Second)
	m := msgs[0]
	if m.To[0] != u.Email || m.Subject != "Reset your rolegate password" || m.ContentType != "multipart/alternative" || m.HTML == "" {
		t.Fatalf("mail to %v subject %q type %q", m.To, m.Subject, m.ContentType)
	}
	link := resetLink.FindString(m.Text)
	if link == "" || !strings.HasPrefix(link, e.URL+"/") || !strings.Contains(m.HTML, link) {
		t.Fatalf("no link on the public URL in the mail:\n%s", m.Text)
	}

	// The link's page posts the new password with the token.
	pg = browserGet(t, browser, link)
	form := hiddenFields(pg.body)
	if pg.status != 200 || form.Get("token") == "" {
		t.Fatalf("reset page = %d %s", pg.status, pg.body)
	}
	form.Set("new_password", "short")
	if r := browserPost(t, browser, e.URL+"/reset-password", form); r.status != 400 || !strings.Contains(r.body, "12") {
		t.Errorf("a short password: %d, want the page again saying why", r.status)
	}
	form.Set("new_password", "a much longer passphrase")
	done := browserPost(t, browser, e.URL+"/reset-password", form)
	if done.status != 200 || !strings.Contains(done.body, "Password changed") {
		t.Fatalf("reset = %d %s", done.status, done.body)
	}

	// The old tokens are refused at once, the old password fails, the
	// new one works; the link is used up; the address is verified.
	if works(t, e, old.access) {
		t.Error("an access token from before the reset still works")
	}
	r := do(t, "POST", e.URL+"/token", form2("grant_type", "refresh_token", "refresh_token", old.refresh), map[string]string{"Content-Type": formCT})
	assertOAuthError(t, r, 400, "invalid_grant")
	r = do(t, "POST", e.URL+"/token", form2("grant_type", "password", "username", u.Email, "password", u.Password), map[string]string{"Content-Type": formCT})
	assertOAuthError(t, r, 400, "invalid_grant")
	u.Password = "a much longer passphrase"
	loginTokens(t, e, u)
	if again := browserPost(t, browser, e.URL+"/reset-password", form); again.status != 400 {
		t.Errorf("the link a second time: %d, want 400", again.status)
	}
	var verified bool
	if err := e.Pool.QueryRow(t.Context(), `SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1`, u.ID).Scan(&verified); err != nil || !verified {
		t.Errorf("after a reset the address is not verified (%v)", err)
	}
}

// TestPasswordResetRequest: the API answers the same for known and unknown
// addresses, mails only the known, voids an older link with a newer one,
// and a link expires (test clock).
func TestPasswordResetRequest(t *testing.T) {
	t.Parallel()
	clk := newClock()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: smtp.URL(), Now: clk.Now})
	u := e.CreateUser(t, "kate@example.com", "user")
	ask := func(address string) response {
		return do(t, "POST", e.URL+"/password-reset", strings.NewReader(`{"email":"`+address+`"}`), map[string]string{"Content-Type": "application/json"})
	}
	known, unknown := ask(u.Email), ask("nobody@example.com")
	if known.status != 202 || known.body != unknown.body || unknown.status != 202 {
		t.Fatalf("known %d %s, unknown %d %s: want the same 202", known.status, known.body, unknown.status, unknown.body)
	}
	// About the same time either way (the answer waits for a floor that
	// covers the work of a known address): the fastest of three each.
	fastest := func(address string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			ask(address)
			best = min(best, time.Since(start))
		}
		return best
	}
	if k, n := fastest(u.Email), fastest("nobody@example.com"); k > 2*n || n > 2*k {
		t.Errorf("known address answered in %v, unknown in %v: want within 2x", k, n)
	}
	ask(u.Email) // a newer link voids the earlier ones
	msgs := smtp.Wait(t, 5, 10*time.Second)
	first, second := resetToken(t, msgs[0].Text), resetToken(t, msgs[4].Text)
	confirm := func(tok string) response {
		return do(t, "POST", e.URL+"/password-reset/confirm", strings.NewReader(`{"token":"`+tok+`","new_password":"a much longer passphrase"}`),
			map[string]string{"Content-Type": "application/json"})
	}
	if r := confirm(first); r.status != 400 {
		t.Errorf("the voided link: %d, want 400", r.status)
	}
	clk.Advance(31 * time.Minute)
	if r := confirm(second); r.status != 400 || !strings.Contains(r.body, "not valid") {
		t.Errorf("the link after 31 minutes: %d %s, want 400", r.status, r.body)
	}
	if n := len(smtp.Received()); n != 5 {
		t.Errorf("%d mails, want 5: none for the unknown address", n)
	}
	// At most 5 mails an hour for one account, whatever the answers: the
	// sixth ask is refused (its budget counts requests, not failures).
	if r := ask(u.Email); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("a sixth reset mail within the hour: %d, want 429 with Retry-After", r.status)
	}
}

func resetToken(t *testing.T, text string) string {
	t.Helper()
	link := resetLink.FindString(text)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no reset link in %q", text)
	}
	return u.Query().Get("token")
}

// hiddenFields are the hidden inputs of a page's form.
func hiddenFields(body string) url.Values {
	v := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return v
}

func form2(kv ...string) *strings.Reader {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return strings.NewReader(v.Encode())
}

func browserGet(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func browserPost(t *testing.T, c *http.Client, u string, v url.Values) page {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

var verifyLink = regexp.MustCompile(`https?://\S+/verify-email\?token=[A-Za-z0-9_-]+`)

// TestEmailVerification: the caller asks for the mail; its link opens a
// page whose button verifies the address (the link alone changes
// nothing); the link works once; a verified address gets no more mail.
func TestEmailVerification(t *testing.T) {
	t.Parallel()
	e, smtp, u := recoveryEnv(t)
	verified := func() bool {
		var v bool
		if err := e.Pool.QueryRow(t.Context(), `SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1`, u.ID).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	ask := func() response {
		return do(t, "POST", e.URL+"/identify/me/email-verification", nil, map[string]string{"Authorization": "Bearer " + loginTokens(t, e, u).access})
	}
	if r := ask(); r.status != 202 {
		t.Fatalf("ask = %d %s", r.status, r.body)
	}
	m := smtp.Wait(t, 1, 10*time.Second)[0]
	link := verifyLink.FindString(m.Text)
	if m.To[0] != u.Email || link == "" || !strings.Contains(m.HTML, link) {
		t.Fatalf("mail to %v:\n%s", m.To, m.Text)
	}
	browser := newBrowser(t)
	pg := browserGet(t, browser, link)
	if pg.status != 200 || verified() {
		t.Fatalf("opening the link: %d, verified %v; want the page and nothing changed", pg.status, verified())
	}
	done := browserPost(t, browser, e.URL+"/verify-email", hiddenFields(pg.body))
	if done.status != 200 || !verified() {
		t.Fatalf("the page's button: %d %s, verified %v", done.status, done.body, verified())
	}
	if again := browserPost(t, browser, e.URL+"/verify-email", hiddenFields(pg.body)); again.status != 400 {
		t.Errorf("the link a second time: %d, want 400", again.status)
	}
	r := do(t, "POST", e.URL+"/email-verification/confirm", strings.NewReader(`{"token":"`+strings.Repeat("A", 43)+`"}`), map[string]string{"Content-Type": "application/json"})
	if r.status != 400 {
		t.Errorf("an unknown token by the API: %d, want 400", r.status)
	}
	if r := ask(); r.status != 202 {
		t.Fatalf("ask once verified = %d", r.status)
	}
	var queued int
	if err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM mail_outbox`).Scan(&queued); err != nil || queued != 1 {
		t.Errorf("%d mails queued (%v), want 1: none once the address is verified", queued, err)
	}
}

// TestSignUp: with sign-up open, a new address gets an account with the
// sign-up roles and a verification mail, which proves the address; a
// taken address gets the same answer, in about the same time, and its
// owner a mail saying so; closed, sign-up is 403.
func TestSignUp(t *testing.T) {
	t.Parallel()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: smtp.URL(), SignUp: true})
	owner := e.CreateUser(t, "owner@example.com", "user")
	signUp := func(env *apitest.Env, addr string) (response, time.Duration) {
		start := time.Now()
		r := do(t, "POST", env.URL+"/signup", strings.NewReader(`{"email":"`+addr+`","password":"correct horse battery staple"}`),
			map[string]string{"Content-Type": "application/json"})
		return r, time.Since(start)
	}
	fresh, tf := signUp(e, "New.Person@example.com")
	taken, tt := signUp(e, "OWNER@example.com")
	if fresh.status != 202 || taken.status != 202 || fresh.body != taken.body {
		t.Fatalf("new %d %s, taken %d %s: want the same 202", fresh.status, fresh.body, taken.status, taken.body)
	}
	msgs := smtp.Wait(t, 2, 10*time.Second)
	// About the same time either way: the fastest of three each, so that
	// one slow answer on a busy machine does not decide.
	for i := range 2 {
		_, f := signUp(e, fmt.Sprintf("timing%d@example.com", i))
		_, k := signUp(e, "owner@example.com")
		tf, tt = min(tf, f), min(tt, k)
	}
	if tf > 2*tt || tt > 2*tf {
		t.Errorf("a new address answered in %v at best, a taken one in %v: want within 2x", tf, tt)
	}
	byTo := map[string]mailtest.Received{}
	for _, m := range msgs {
		byTo[m.To[0]] = m
	}
	if m, ok := byTo[owner.Email]; !ok || !strings.Contains(m.Text, "Someone tried to create") || verifyLink.MatchString(m.Text) {
		t.Errorf("the owner's mail: %+v", m.Text)
	}
	m, ok := byTo["New.Person@example.com"]
	link := verifyLink.FindString(m.Text)
	if !ok || link == "" {
		t.Fatalf("no verification mail for the new account: %v", byTo)
	}
	u := apitest.User{Email: "new.person@example.com", Password: "correct horse battery staple"}
	me := do(t, "GET", e.URL+"/identify/me", nil, map[string]string{"Authorization": "Bearer " + loginTokens(t, e, u).access}).json(t)
	if roles, _ := me["roles"].([]any); len(roles) != 1 || roles[0] != "user" {
		t.Errorf("the new account's roles: %v, want [user]", me["roles"])
	}
	browser := newBrowser(t)
	pg := browserGet(t, browser, link)
	if done := browserPost(t, browser, e.URL+"/verify-email", hiddenFields(pg.body)); done.status != 200 {
		t.Errorf("verifying the new account: %d %s", done.status, done.body)
	}

	closed := apitest.New(t)
	if r, _ := signUp(closed, "someone@example.com"); r.status != 403 {
		t.Errorf("sign-up while closed: %d, want 403", r.status)
	}
	if r, _ := signUp(e, "weak@example.com"); r.status != 202 {
		t.Fatalf("setup: %d", r.status)
	}
	weak := do(t, "POST", e.URL+"/signup", strings.NewReader(`{"email":"weak2@example.com","password":"short"}`), map[string]string{"Content-Type": "application/json"})
	if weak.status != 400 {
		t.Errorf("a short password: %d, want 400", weak.status)
	}
}

var changeLink = regexp.MustCompile(`https?://\S+/change-email\?token=[A-Za-z0-9_-]+`)

// TestEmailChange: with the password, the new address gets the link and
// the old one a notice; nothing changes until the link's page is
// confirmed; then the account signs in with the new address, verified, and
// the old tokens are refused; an address another account has gets no link.
func TestEmailChange(t *testing.T) {
	t.Parallel()
	e, smtp, u := recoveryEnv(t)
	e.CreateUser(t, "taken@example.com", "user")
	tok := loginTokens(t, e, u)
	ask := func(body string) response {
		return do(t, "POST", e.URL+"/identify/me/email", strings.NewReader(body),
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok.access})
	}
	if r := ask(`{"new_email":"kate@example.org","password":"wrong"}`); r.status != 400 || !strings.Contains(r.body, "body.password") {
		t.Errorf("a wrong password: %d %s", r.status, r.body)
	}
	if r := ask(`{"new_email":"taken@example.com","password":"` + u.Password + `"}`); r.status != 202 {
		t.Errorf("a taken address: %d, want the same 202", r.status)
	}
	if r := ask(`{"new_email":"kate@example.org","password":"` + u.Password + `"}`); r.status != 202 {
		t.Fatalf("change = %d %s", r.status, r.body)
	}
	msgs := smtp.Wait(t, 2, 10*time.Second)
	byTo := map[string]string{}
	for _, m := range msgs {
		byTo[m.To[0]] = m.Text
	}
	link := changeLink.FindString(byTo["kate@example.org"])
	if link == "" || !strings.Contains(byTo[u.Email], "kate@example.org") || changeLink.MatchString(byTo[u.Email]) {
		t.Fatalf("mails: %v", byTo)
	}
	if _, ok := byTo["taken@example.com"]; ok {
		t.Error("an address another account has got a link")
	}
	browser := newBrowser(t)
	pg := browserGet(t, browser, link)
	if !works(t, e, tok.access) {
		t.Fatal("opening the link changed something")
	}
	if done := browserPost(t, browser, e.URL+"/change-email", hiddenFields(pg.body)); done.status != 200 {
		t.Fatalf("confirm = %d %s", done.status, done.body)
	}
	if works(t, e, tok.access) {
		t.Error("a token with the old email still works")
	}
	moved := apitest.User{Email: "kate@example.org", Password: u.Password}
	me := do(t, "GET", e.URL+"/identify/me", nil, map[string]string{"Authorization": "Bearer " + loginTokens(t, e, moved).access}).json(t)
	if me["email"] != "kate@example.org" {
		t.Errorf("after the change /identify/me = %v", me)
	}
	r := do(t, "POST", e.URL+"/token", form2("grant_type", "password", "username", u.Email, "password", u.Password), map[string]string{"Content-Type": formCT})
	assertOAuthError(t, r, 400, "invalid_grant")
	if again := browserPost(t, browser, e.URL+"/change-email", hiddenFields(pg.body)); again.status != 400 {
		t.Errorf("the link a second time: %d, want 400", again.status)
	}
}

// TestSignUpPage: with sign-up open, the sign-in page links to the sign-up
// page, whose form creates the account and mails the verification link (a
// password that breaks the rules shows the form again, saying why); with
// it closed, there is no link and the page is 403.
func TestSignUpPage(t *testing.T) {
	t.Parallel()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	p := newRP(t, false, apitest.Options{SMTPURL: smtp.URL(), SignUp: true})
	signInPage := p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	link := `href="` + p.e.URL + `/create-account"`
	if !strings.Contains(signInPage.body, link) || !strings.Contains(signInPage.body, "Create account") {
		t.Fatalf("the sign-in page has no link to the sign-up page:\n%s", signInPage.body)
	}
	pg := browserGet(t, p.browser, p.e.URL+"/create-account")
	form := hiddenFields(pg.body)
	if pg.status != 200 || form.Get("csrf_token") == "" {
		t.Fatalf("sign-up page = %d %s", pg.status, pg.body)
	}
	form.Set("email", "Newcomer@example.com")
	form.Set("password", "short")
	if r := browserPost(t, p.browser, p.e.URL+"/create-account", form); r.status != 400 || !strings.Contains(r.body, "12") || !strings.Contains(r.body, "Newcomer@example.com") {
		t.Errorf("a short password: %d %s, want the form again saying why", r.status, r.body)
	}
	form.Set("password", "correct horse battery staple")
	done := browserPost(t, p.browser, p.e.URL+"/create-account", form)
	if done.status != 200 || !strings.Contains(done.body, "Check your mail") {
		t.Fatalf("sign-up form = %d %s", done.status, done.body)
	}
	m := smtp.Wait(t, 1, 10*time.Second)[0]
	if m.To[0] != "Newcomer@example.com" || !verifyLink.MatchString(m.Text) || m.HTML == "" {
		t.Fatalf("mail to %v:\n%s", m.To, m.Text)
	}
	form.Set("csrf_token", "forged")
	if r := browserPost(t, p.browser, p.e.URL+"/create-account", form); r.status != 400 || !strings.Contains(r.body, "expired") {
		t.Errorf("a forged CSRF token: %d, want the form again", r.status)
	}

	closed := newRP(t, false)
	signInPage = closed.get(t, closed.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if signInPage.status != 200 || strings.Contains(signInPage.body, "create-account") {
		t.Errorf("with sign-up closed the sign-in page links to it (%d)", signInPage.status)
	}
	if r := browserGet(t, closed.browser, closed.e.URL+"/create-account"); r.status != 403 {
		t.Errorf("the sign-up page while closed: %d, want 403", r.status)
	}
}

// TestRequireVerifiedEmail: with ROLEGATE_REQUIRE_VERIFIED_EMAIL, the
// right password of an unverified account is refused by the password
// grant and the sign-in page, each saying why and mailing a new link;
// once the link is followed, the account signs in, and its token and
// /identify/me say the address is verified.
func TestRequireVerifiedEmail(t *testing.T) {
	t.Parallel()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	p := newRP(t, false, apitest.Options{SMTPURL: smtp.URL(), RequireVerifiedEmail: true})
	e, u := p.e, p.user
	login := func(pw string) response {
		return do(t, "POST", e.URL+"/token", form2("grant_type", "password", "username", u.Email, "password", pw), map[string]string{"Content-Type": formCT})
	}
	r := login(u.Password)
	assertOAuthError(t, r, 400, "invalid_grant")
	if desc, _ := r.json(t)["error_description"].(string); !strings.Contains(desc, "not verified") {
		t.Errorf("error_description = %q, want it to say the address is not verified", desc)
	}
	if r := login("a wrong password"); !strings.Contains(r.body, "incorrect") {
		t.Errorf("a wrong password: %s, want the usual refusal (nothing said of the address)", r.body)
	}
	first := verifyLink.FindString(smtp.Wait(t, 1, 10*time.Second)[0].Text)

	pg := p.submit(t, p.get(t, p.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))), u.Email, u.Password)
	if pg.status != 400 || !strings.Contains(pg.body, "not verified yet") {
		t.Errorf("the sign-in page: %d, want it to say the address is not verified", pg.status)
	}
	msgs := smtp.Wait(t, 2, 10*time.Second)
	newest := verifyLink.FindString(msgs[1].Text)
	if first == "" || newest == "" || newest == first {
		t.Fatalf("links %q and %q: want a new one with each refusal", first, newest)
	}
	if old := browserPost(t, p.browser, e.URL+"/verify-email", hiddenFields(browserGet(t, p.browser, first).body)); old.status != 400 {
		t.Errorf("the older link: %d, want 400 (the newer voids it)", old.status)
	}
	if done := browserPost(t, p.browser, e.URL+"/verify-email", hiddenFields(browserGet(t, p.browser, newest).body)); done.status != 200 {
		t.Fatalf("verifying: %d %s", done.status, done.body)
	}
	r = login(u.Password)
	if r.status != 200 {
		t.Fatalf("once verified: %d %s", r.status, r.body)
	}
	access, _ := r.json(t)["access_token"].(string)
	if jwtPayload(t, access)["email_verified"] != true {
		t.Errorf("the token's claims: %v, want email_verified true", jwtPayload(t, access))
	}
	if me := do(t, "GET", e.URL+"/identify/me", nil, bearer(access)).json(t); me["email_verified"] != true {
		t.Errorf("/identify/me = %v, want email_verified true", me)
	}
}

// TestEmailVerifiedShown: email_verified in /identify/me, the access
// token and the users API, false until the link is followed and true in
// the tokens issued after.
func TestEmailVerifiedShown(t *testing.T) {
	t.Parallel()
	e, smtp, u := recoveryEnv(t)
	admin := e.CreateUser(t, "root@example.com", "admin")
	verifiedIn := func() (me, user any) {
		tok := loginTokens(t, e, u).access
		me = do(t, "GET", e.URL+"/identify/me", nil, bearer(tok)).json(t)["email_verified"]
		user = do(t, "GET", e.URL+"/users/"+strconv.FormatInt(u.ID, 10), nil, bearer(e.Token(t, admin))).json(t)["email_verified"]
		if jwtPayload(t, tok)["email_verified"] != me {
			t.Errorf("the token says %v, /identify/me %v", jwtPayload(t, tok)["email_verified"], me)
		}
		return me, user
	}
	if me, user := verifiedIn(); me != false || user != false {
		t.Fatalf("before: /identify/me %v, /users/{id} %v, want false", me, user)
	}
	if r := do(t, "POST", e.URL+"/identify/me/email-verification", nil, bearer(loginTokens(t, e, u).access)); r.status != 202 {
		t.Fatalf("ask = %d", r.status)
	}
	b := newBrowser(t)
	link := verifyLink.FindString(smtp.Wait(t, 1, 10*time.Second)[0].Text)
	if r := browserPost(t, b, e.URL+"/verify-email", hiddenFields(browserGet(t, b, link).body)); r.status != 200 {
		t.Fatalf("verify = %d", r.status)
	}
	if me, user := verifiedIn(); me != true || user != true {
		t.Errorf("after: /identify/me %v, /users/{id} %v, want true", me, user)
	}
}

// TestMailPerAddress: past its hour's budget of mail, an address gets no
// more, the answer is the same, and the link it has keeps working (the
// request that sent nothing voided nothing).
func TestMailPerAddress(t *testing.T) {
	t.Parallel()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: smtp.URL(), MailPerAddress: 1})
	u := e.CreateUser(t, "kate@example.com", "user")
	ask := func() response {
		return do(t, "POST", e.URL+"/password-reset", strings.NewReader(`{"email":"kate@example.com"}`), map[string]string{"Content-Type": "application/json"})
	}
	first, second := ask(), ask()
	if first.status != 202 || second.status != 202 || first.body != second.body {
		t.Fatalf("answers %d %s and %d %s: want the same 202", first.status, first.body, second.status, second.body)
	}
	tok := resetToken(t, smtp.Wait(t, 1, 10*time.Second)[0].Text)
	var queued int
	if err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM mail_outbox`).Scan(&queued); err != nil || queued != 1 {
		t.Errorf("%d mails queued (%v), want 1", queued, err)
	}
	r := do(t, "POST", e.URL+"/password-reset/confirm", strings.NewReader(`{"token":"`+tok+`","new_password":"a much longer passphrase"}`), map[string]string{"Content-Type": "application/json"})
	if r.status != 204 {
		t.Errorf("the first link after a request past the budget: %d %s, want 204", r.status, r.body)
	}
	u.Password = "a much longer passphrase"
	loginTokens(t, e, u)
}
