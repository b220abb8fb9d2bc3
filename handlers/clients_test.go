package handlers_test

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/apitest"
)

// machine is a client as POST /clients answered it.
type machine struct{ id, secret string }

func createClient(t *testing.T, e *apitest.Env, admin, body string) machine {
	t.Helper()
	r := do(t, "POST", e.URL+"/clients", strings.NewReader(body), jsonHeaders(admin))
	m := r.json(t)
	id, _ := m["client_id"].(string)
	secret, _ := m["client_secret"].(string)
	if r.status != 201 || id == "" || secret == "" || r.header.Get("Location") != "/clients/"+id || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /clients = %d %v %s", r.status, r.header, r.body)
	}
	return machine{id, secret}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// clientToken sends the client credentials grant with Basic credentials.
func clientToken(t *testing.T, e *apitest.Env, c machine, kv ...string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form(append([]string{"grant_type", "client_credentials"}, kv...)...),
		map[string]string{"Content-Type": formCT, "Authorization": basic(c.id, c.secret)})
}

func assertInvalidClient(t *testing.T, r response) {
	t.Helper()
	assertOAuthError(t, r, 401, "invalid_client")
	if r.header.Get("WWW-Authenticate") != `Basic realm="rolegate"` {
		t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	c := createClient(t, e, admin, `{"name":"nightly splitter","roles":["system"]}`)

	for name, r := range map[string]response{
		"basic": clientToken(t, e, c),
		"form": do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials", "client_id", c.id, "client_secret", c.secret),
			map[string]string{"Content-Type": formCT}),
	} {
		m := r.json(t)
		access, _ := m["access_token"].(string)
		if r.status != 200 || access == "" || m["refresh_token"] != nil || m["scope"] != "system" {
			t.Fatalf("%s: /token = %d %s, want an access token with scope system and no refresh token", name, r.status, r.body)
		}
		me := do(t, "GET", e.URL+"/identify/me", nil, bearer(access))
		if me.status != 200 || !strings.Contains(me.body, `"kind":"client"`) || !strings.Contains(me.body, `"client_id":"`+c.id+`"`) || strings.Contains(me.body, "email") {
			t.Errorf("%s: identify/me = %d %s", name, me.status, me.body)
		}
	}
	assertInvalidClient(t, clientToken(t, e, machine{c.id, c.secret + "x"}))
	assertInvalidClient(t, clientToken(t, e, machine{"cl_AAAAAAAAAAAAAAAAAAAAAA", c.secret}))
	assertInvalidClient(t, do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials"), map[string]string{"Content-Type": formCT}))
	assertOAuthError(t, do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials", "client_id", c.id, "client_secret", c.secret),
		map[string]string{"Content-Type": formCT, "Authorization": basic(c.id, c.secret)}), 400, "invalid_request")
	assertOAuthError(t, clientToken(t, e, c, "scope", "admin"), 400, "invalid_scope")
}

// Credentials presented on a password grant are checked too.
func TestClientCredentialsOnOtherGrants(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	c := createClient(t, e, admin, `{"name":"web app","roles":[]}`)
	u := e.CreateUser(t, "webapp@example.com", "user")
	login := func(auth string) response {
		return do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", u.Email, "password", u.Password),
			map[string]string{"Content-Type": formCT, "Authorization": auth})
	}
	assertInvalidClient(t, login(basic(c.id, "wrong")))
	tokensOf(t, login(basic(c.id, c.secret)))
}

// A system client splits a user's document; the parts are the user's.
func TestSystemClientSplitsADocument(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	c := createClient(t, e, admin, `{"name":"splitter","roles":["system"]}`)
	owner := e.CreateUser(t, "owner@example.com", "user")
	id := mustUpload(t, e, e.Token(t, owner), "three.pdf", makePDF(t, 3))
	access := clientToken(t, e, c).json(t)["access_token"].(string)
	r := splitAs(t, e, access, id, `{"ranges":["1","2-3"]}`)
	if r.status != 201 || strings.Count(r.body, `"owner_id":`+itoa(owner.ID)) != 2 {
		t.Fatalf("split by a system client = %d %s", r.status, r.body)
	}
	// A client owns nothing of its own.
	assertProblem(t, do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"a.pdf","title":"t","body":"b"}`), jsonHeaders(access)), 403)
	assertStoreConsistent(t, e)
}

// Deleting a client or replacing its secret stops its tokens at once.
func TestClientChangesReachTokens(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	c := createClient(t, e, admin, `{"name":"rotating","roles":["system"]}`)
	old := clientToken(t, e, c).json(t)["access_token"].(string)

	r := do(t, "POST", e.URL+"/clients/"+c.id+"/secret", nil, bearer(admin))
	next, _ := r.json(t)["client_secret"].(string)
	if r.status != 200 || next == "" || next == c.secret || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate secret = %d %s", r.status, r.body)
	}
	if works(t, e, old) {
		t.Error("a token issued with the old secret still works")
	}
	assertInvalidClient(t, clientToken(t, e, c))
	fresh := clientToken(t, e, machine{c.id, next}).json(t)["access_token"].(string)
	if !works(t, e, fresh) {
		t.Fatal("the new secret's token is refused")
	}

	list := do(t, "GET", e.URL+"/clients", nil, bearer(admin))
	if list.status != 200 || !strings.Contains(list.body, c.id) || strings.Contains(list.body, "secret") {
		t.Errorf("GET /clients = %d %s", list.status, list.body)
	}
	if r := do(t, "DELETE", e.URL+"/clients/"+c.id, nil, bearer(admin)); r.status != 204 {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if works(t, e, fresh) {
		t.Error("a deleted client's token still works")
	}
	assertInvalidClient(t, clientToken(t, e, machine{c.id, next}))
	assertProblem(t, do(t, "GET", e.URL+"/clients/"+c.id, nil, bearer(admin)), 404)
	assertProblem(t, do(t, "POST", e.URL+"/clients", strings.NewReader(`{"name":"x","roles":["wizard"]}`), jsonHeaders(admin)), 400)
}

// scope narrows a token to some of the caller's roles; a refresh keeps at
// most the session's scope.
func TestScope(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "narrow@example.com", "admin", "user")
	login := func(scope string) response {
		return do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", u.Email, "password", u.Password, "scope", scope),
			map[string]string{"Content-Type": formCT})
	}
	r := login("user")
	tok := tokensOf(t, r)
	if m := r.json(t); m["scope"] != "user" {
		t.Errorf("scope = %v, want user", m["scope"])
	}
	me := do(t, "GET", e.URL+"/identify/me", nil, bearer(tok.access))
	if !strings.Contains(me.body, `"roles":["user"]`) {
		t.Errorf("a token of scope user: %s", me.body)
	}
	assertProblem(t, do(t, "GET", e.URL+"/users", nil, bearer(tok.access)), 403) // admin left out
	assertOAuthError(t, login("user system"), 400, "invalid_scope")

	next := refresh(t, e, tok.refresh)
	if m := next.json(t); m["scope"] != "user" {
		t.Errorf("a refresh widened the scope to %v", m["scope"])
	}
	nextRefresh := tokensOf(t, next).refresh
	assertOAuthError(t, do(t, "POST", e.URL+"/token", form("grant_type", "refresh_token", "refresh_token", nextRefresh, "scope", "admin"),
		map[string]string{"Content-Type": formCT}), 400, "invalid_scope")
	tokensOf(t, refresh(t, e, nextRefresh)) // the refused scope used nothing up

	// No scope: every role, said in the answer.
	if m := login("").json(t); !slices.Contains(strings.Fields(m["scope"].(string)), "admin") {
		t.Errorf("without scope: %v", m["scope"])
	}
}
