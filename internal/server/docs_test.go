package server_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/swaggerui"
)

// answer is a response as a test reads it.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("%d %s: %v", a.status, a.body, err)
	}
	return m
}

// browser is a cookie-keeping client that stops at redirects, every
// response checked against the spec.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := apitest.ContractClient(t)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func call(t *testing.T, c *http.Client, method, u string, body url.Values, header map[string]string) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// TestDocsClient checks the docs page's built-in client as the docs page
// uses it: a public client whose one redirect URI is the page's
// oauth2-redirect.html on the public URL, named on the sign-in page; its
// code is exchanged with client_id alone, never with a secret. It gets no
// client credentials grant, and /clients neither lists nor addresses it.
func TestDocsClient(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "kate@example.com", "user")
	admin := e.CreateUser(t, "root@example.com", "admin", "user")
	redirect := e.URL + "/docs/oauth2-redirect.html"
	verifier := oauth2.GenerateVerifier()
	authorize := func(redirectURI string) string {
		return e.URL + "/authorize?" + url.Values{
			"response_type": {"code"}, "client_id": {"rolegate-docs"}, "redirect_uri": {redirectURI},
			"scope": {"openid email"}, "state": {"s1"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		}.Encode()
	}

	for _, other := range []string{e.URL + "/docs/", e.URL + "/oauth2-redirect.html", "http://127.0.0.1:9/docs/oauth2-redirect.html"} {
		if a := call(t, browser(t), "GET", authorize(other), nil, nil); a.status != 400 {
			t.Errorf("GET /authorize for the docs client with redirect_uri %s = %d, want 400 (not its redirect URI)", other, a.status)
		}
	}

	b := browser(t)
	pg := call(t, b, "GET", authorize(redirect), nil, nil)
	m := formAction.FindStringSubmatch(pg.body)
	if pg.status != 200 || m == nil {
		t.Fatalf("GET /authorize for the docs client = %d, want the sign-in page:\n%s", pg.status, pg.body)
	}
	if !strings.Contains(pg.body, "<strong>rolegate API docs</strong>") {
		t.Errorf("the sign-in page does not name the docs client:\n%s", pg.body)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(pg.body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	form.Set("email", u.Email)
	form.Set("password", u.Password)
	back := call(t, b, "POST", html.UnescapeString(m[1]), form, nil)
	loc, err := url.Parse(back.header.Get("Location"))
	if back.status != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("POST /sign-in = %d %q, want a redirect to %s", back.status, back.header.Get("Location"), redirect)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("redirect back %s: want a code and state s1", loc)
	}

	// Where the browser lands: Swagger UI's page, under the docs' CSP.
	landing := call(t, b, "GET", loc.String(), nil, nil)
	if landing.status != 200 || landing.header.Get("Content-Security-Policy") != swaggerui.ContentSecurityPolicy ||
		!strings.HasPrefix(landing.header.Get("Content-Type"), "text/html") || !strings.Contains(landing.body, `<script src="oauth2-redirect.js">`) {
		t.Errorf("GET %s = %d %v\n%s", loc, landing.status, landing.header, landing.body)
	}
	if js := call(t, b, "GET", e.URL+"/docs/oauth2-redirect.js", nil, nil); js.status != 200 || !strings.Contains(js.body, "swaggerUIRedirectOauth2") {
		t.Errorf("GET /docs/oauth2-redirect.js = %d", js.status)
	}

	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {"rolegate-docs"}, "code_verifier": {verifier}}
	withSecret := url.Values{"client_secret": {"anything"}}
	for k, v := range exchange {
		withSecret[k] = v
	}
	if a := call(t, b, "POST", e.URL+"/token", withSecret, nil); a.status != 401 || a.json(t)["error"] != "invalid_client" {
		t.Errorf("the docs client's code with a secret = %d %s, want 401 invalid_client", a.status, a.body)
	}
	tok := call(t, b, "POST", e.URL+"/token", exchange, nil)
	access, _ := tok.json(t)["access_token"].(string)
	if tok.status != 200 || access == "" || tok.json(t)["id_token"] == nil {
		t.Fatalf("the docs client's code exchange = %d %s", tok.status, tok.body)
	}
	me := call(t, b, "GET", e.URL+"/identify/me", nil, map[string]string{"Authorization": "Bearer " + access})
	if me.status != 200 || me.json(t)["email"] != u.Email {
		t.Errorf("GET /identify/me with the docs client's token = %d %s", me.status, me.body)
	}

	for _, tt := range []struct {
		name   string
		creds  url.Values
		status int
		error  string
	}{
		{"client_id alone", url.Values{"client_id": {"rolegate-docs"}}, 400, "unauthorized_client"},
		{"with a secret", url.Values{"client_id": {"rolegate-docs"}, "client_secret": {"anything"}}, 401, "invalid_client"},
	} {
		tt.creds.Set("grant_type", "client_credentials")
		a := call(t, b, "POST", e.URL+"/token", tt.creds, nil)
		if a.status != tt.status || a.json(t)["error"] != tt.error {
			t.Errorf("client credentials for the docs client, %s = %d %s, want %d %s", tt.name, a.status, a.body, tt.status, tt.error)
		}
	}

	bearer := map[string]string{"Authorization": "Bearer " + e.Token(t, admin)}
	if list := call(t, b, "GET", e.URL+"/clients", nil, bearer); list.status != 200 || strings.Contains(list.body, "rolegate-docs") {
		t.Errorf("GET /clients = %d %s, want 200 without the docs client", list.status, list.body)
	}
	// Registered clients' ids are cl_ and 22 characters: the spec's
	// pattern refuses the docs client's before any handler.
	for _, method := range []string{"GET", "DELETE"} {
		if a := call(t, b, method, e.URL+"/clients/rolegate-docs", nil, bearer); a.status != 400 {
			t.Errorf("%s /clients/rolegate-docs = %d %s, want 400 (not a registered client's id)", method, a.status, a.body)
		}
	}
}
