package handlers_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
)

// clock is a test clock the server reads; tests move it instead of
// sleeping.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// tokens is what /token answered.
type tokens struct{ access, refresh string }

// loginTokens logs u in and returns its tokens.
func loginTokens(t *testing.T, e *apitest.Env, u apitest.User, header ...string) tokens {
	t.Helper()
	h := map[string]string{"Content-Type": formCT}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	r := do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", u.Email, "password", u.Password), h)
	return tokensOf(t, r)
}

func tokensOf(t *testing.T, r response) tokens {
	t.Helper()
	m := r.json(t)
	access, _ := m["access_token"].(string)
	refresh, _ := m["refresh_token"].(string)
	if r.status != 200 || access == "" || refresh == "" {
		t.Fatalf("/token = %d %s, want an access and a refresh token", r.status, r.body)
	}
	return tokens{access, refresh}
}

// refresh sends the refresh_token grant.
func refresh(t *testing.T, e *apitest.Env, token string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form("grant_type", "refresh_token", "refresh_token", token), map[string]string{"Content-Type": formCT})
}

// revoke sends an RFC 7009 revocation.
func revoke(t *testing.T, e *apitest.Env, kv ...string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token/revoke", form(kv...), map[string]string{"Content-Type": formCT})
}

// works reports whether an access token is accepted.
func works(t *testing.T, e *apitest.Env, access string) bool {
	t.Helper()
	r := do(t, "GET", e.URL+"/identify/me", nil, bearer(access))
	switch r.status {
	case 200:
		return true
	case 401:
		assertTokenRefused(t, r)
		return false
	}
	t.Fatalf("GET /identify/me = %d %s", r.status, r.body)
	return false
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := e.CreateUser(t, "rotate@example.com", "user")
	first := loginTokens(t, e, u)
	seen := map[string]bool{first.refresh: true}
	cur := first
	for i := range 3 {
		clk.Advance(time.Minute) // past the reuse window each time
		next := tokensOf(t, refresh(t, e, cur.refresh))
		if seen[next.refresh] || next.access == cur.access {
			t.Fatalf("refresh %d answered a token seen before", i)
		}
		seen[next.refresh] = true
		if !works(t, e, next.access) {
			t.Fatalf("refresh %d: its access token is refused", i)
		}
		cur = next
	}
	// A refresh token may not be used twice once the window has passed.
	clk.Advance(time.Minute)
	assertOAuthError(t, refresh(t, e, first.refresh), 400, "invalid_grant")
	assertOAuthError(t, refresh(t, e, "not a token"), 400, "invalid_grant")
	assertOAuthError(t, do(t, "POST", e.URL+"/token", form("grant_type", "refresh_token"), map[string]string{"Content-Type": formCT}), 400, "invalid_request")
}

// Presenting a used refresh token again ends the session: its latest
// refresh token and access token die with it.
func TestRefreshReuseEndsTheSession(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := e.CreateUser(t, "reuse@example.com", "user")
	stolen := loginTokens(t, e, u)
	clk.Advance(time.Minute)
	latest := tokensOf(t, refresh(t, e, stolen.refresh)) // the owner refreshes
	clk.Advance(time.Minute)
	other := loginTokens(t, e, u) // another session of the same user
	assertOAuthError(t, refresh(t, e, stolen.refresh), 400, "invalid_grant")
	if works(t, e, latest.access) {
		t.Error("the session's latest access token works after its refresh token was reused")
	}
	assertOAuthError(t, refresh(t, e, latest.refresh), 400, "invalid_grant")
	if !works(t, e, other.access) {
		t.Error("another session of the user was ended too")
	}
	tokensOf(t, refresh(t, e, other.refresh))
}

// Two refreshes of one token at once (two tabs) both succeed, with the same
// new refresh token, and leave one live session.
func TestConcurrentRefreshesWithinTheWindow(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "tabs@example.com", "user")
	tok := loginTokens(t, e, u)
	const tabs = 4
	got := make([]response, tabs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tabs {
		wg.Go(func() {
			<-start
			got[i] = refresh(t, e, tok.refresh)
		})
	}
	close(start)
	wg.Wait()
	var refreshTokens []string
	for i, r := range got {
		next := tokensOf(t, r)
		if !works(t, e, next.access) {
			t.Errorf("tab %d: access token refused", i)
		}
		refreshTokens = append(refreshTokens, next.refresh)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(refreshTokens))); len(distinct) != 1 {
		t.Errorf("concurrent refreshes answered %d different refresh tokens, want 1", len(distinct))
	}
	sessions := do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(tokensOf(t, got[0]).access))
	if list := sessionList(t, sessions); len(list) != 1 {
		t.Errorf("%d live sessions, want 1", len(list))
	}
	tokensOf(t, refresh(t, e, refreshTokens[0])) // the one live token goes on
}

func sessionList(t *testing.T, r response) []map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("GET /identify/me/sessions = %d %s", r.status, r.body)
	}
	var list []map[string]any
	for _, v := range jsonArray(t, r.body) {
		list = append(list, v.(map[string]any))
	}
	return list
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// every: how often the client refreshes; the session must end
		// within end, by its idle or its absolute end.
		every, end time.Duration
	}{
		{"idle", 7*24*time.Hour + time.Second, 7*24*time.Hour + time.Second},
		{"absolute", 6 * 24 * time.Hour, 30*24*time.Hour + 6*24*time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			e := apitest.New(t, apitest.Options{Now: clk.Now})
			u := e.CreateUser(t, "expiry@example.com", "user")
			cur := loginTokens(t, e, u).refresh
			var lived time.Duration
			for {
				clk.Advance(tt.every)
				lived += tt.every
				r := refresh(t, e, cur)
				if r.status != 200 {
					assertOAuthError(t, r, 400, "invalid_grant")
					break
				}
				if lived > tt.end {
					t.Fatalf("the session still refreshes after %v", lived)
				}
				cur = tokensOf(t, r).refresh
			}
			if tt.name == "absolute" && lived < 30*24*time.Hour {
				t.Errorf("the session ended after %v, before its absolute end", lived)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "revoke@example.com", "user")
	for _, kind := range []string{"refresh_token", "access_token"} {
		t.Run(kind, func(t *testing.T) {
			tok := loginTokens(t, e, u)
			token := tok.refresh
			if kind == "access_token" {
				token = tok.access
			}
			r := revoke(t, e, "token", token, "token_type_hint", kind)
			if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("revoke = %d %v", r.status, r.header)
			}
			if works(t, e, tok.access) {
				t.Error("the access token works after the revocation")
			}
			assertOAuthError(t, refresh(t, e, tok.refresh), 400, "invalid_grant")
			// Revoking again, or with the wrong hint, is still 200.
			if r := revoke(t, e, "token", token, "token_type_hint", "access_token"); r.status != 200 {
				t.Errorf("second revocation = %d", r.status)
			}
		})
	}
	for _, garbage := range []string{"garbage", "a.b.c", strings.Repeat("x", 300)} {
		if r := revoke(t, e, "token", garbage); r.status != 200 {
			t.Errorf("revoke %q = %d %s, want 200", garbage, r.status, r.body)
		}
	}
	assertOAuthError(t, revoke(t, e, "token_type_hint", "refresh_token"), 400, "invalid_request")
	assertOAuthError(t, do(t, "POST", e.URL+"/token/revoke?token=x", form("token", "x"), map[string]string{"Content-Type": formCT}), 400, "invalid_request")
}

func TestMySessions(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "sessions@example.com", "user")
	other := e.CreateUser(t, "other@example.com", "user")
	laptop := loginTokens(t, e, u, "User-Agent", "laptop/1.0")
	phone := loginTokens(t, e, u, "User-Agent", "phone/2.0")
	theirs := loginTokens(t, e, other)

	list := sessionList(t, do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(laptop.access)))
	if len(list) != 2 {
		t.Fatalf("%d sessions listed, want 2: %v", len(list), list)
	}
	var phoneID, laptopID string
	for _, s := range list {
		switch s["user_agent"] {
		case "laptop/1.0":
			laptopID = s["id"].(string)
			if s["current"] != true || s["client_addr"] != "127.0.0.1" {
				t.Errorf("laptop session = %v, want current, from 127.0.0.1", s)
			}
		case "phone/2.0":
			phoneID = s["id"].(string)
			if s["current"] != false {
				t.Errorf("phone session = %v, want not current", s)
			}
		}
	}
	if phoneID == "" || laptopID == "" {
		t.Fatalf("sessions %v lack a user agent", list)
	}
	// Someone else's session is 404, and stays alive.
	theirID := sessionList(t, do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(theirs.access)))[0]["id"].(string)
	assertProblem(t, do(t, "DELETE", e.URL+"/identify/me/sessions/"+theirID, nil, bearer(laptop.access)), 404)
	assertProblem(t, do(t, "DELETE", e.URL+"/identify/me/sessions/not-a-uuid", nil, bearer(laptop.access)), 400)
	if !works(t, e, theirs.access) {
		t.Fatal("another user's session was ended")
	}
	// Ending the phone's session signs the phone out, not the laptop.
	if r := do(t, "DELETE", e.URL+"/identify/me/sessions/"+phoneID, nil, bearer(laptop.access)); r.status != 204 {
		t.Fatalf("end phone session = %d %s", r.status, r.body)
	}
	if works(t, e, phone.access) || !works(t, e, laptop.access) {
		t.Error("ending the phone's session: want the phone out and the laptop in")
	}
	assertOAuthError(t, refresh(t, e, phone.refresh), 400, "invalid_grant")
	assertProblem(t, do(t, "DELETE", e.URL+"/identify/me/sessions/"+phoneID, nil, bearer(laptop.access)), 404)
	if list := sessionList(t, do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(laptop.access))); len(list) != 1 {
		t.Errorf("%d sessions after ending one, want 1", len(list))
	}
}

// A password change signs out every other session; the one that made the
// change stays.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "change@example.com", "user")
	mine := loginTokens(t, e, u)
	elsewhere := loginTokens(t, e, u)
	r := do(t, "POST", e.URL+"/identify/me/password",
		strings.NewReader(`{"current_password":"`+u.Password+`","new_password":"a brand new passphrase"}`), jsonHeaders(mine.access))
	if r.status != 204 {
		t.Fatalf("change = %d %s", r.status, r.body)
	}
	if works(t, e, elsewhere.access) {
		t.Error("another session's access token works after the password change")
	}
	assertOAuthError(t, refresh(t, e, elsewhere.refresh), 400, "invalid_grant")
	if !works(t, e, mine.access) {
		t.Error("the session that changed the password was signed out")
	}
	tokensOf(t, refresh(t, e, mine.refresh))
}

// An administrator's changes to an account reach its access tokens at once:
// signing out everywhere, disabling (which re-enabling does not undo) and a
// change of roles, after which the next refresh carries the new roles. A
// token issued after the change works, even within the same second.
func TestAccountChangesReachIssuedTokens(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	u := e.CreateUser(t, "changes@example.com", "user")
	id := strconv.FormatInt(u.ID, 10)
	adminDo := func(method, path, body string) {
		t.Helper()
		if r := do(t, method, e.URL+path, strings.NewReader(body), jsonHeaders(admin)); r.status >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, r.status, r.body)
		}
	}

	tok := loginTokens(t, e, u)
	adminDo("DELETE", "/users/"+id+"/sessions", "")
	if works(t, e, tok.access) {
		t.Error("signed out everywhere, the access token still works")
	}
	assertOAuthError(t, refresh(t, e, tok.refresh), 400, "invalid_grant")

	tok = loginTokens(t, e, u)
	adminDo("POST", "/users/"+id+"/disable", "")
	if works(t, e, tok.access) {
		t.Error("disabled, the access token still works")
	}
	adminDo("POST", "/users/"+id+"/enable", "")
	if works(t, e, tok.access) {
		t.Error("re-enabling revived a token issued before the account was disabled")
	}
	assertOAuthError(t, refresh(t, e, tok.refresh), 400, "invalid_grant")

	tok = loginTokens(t, e, u)
	adminDo("PUT", "/users/"+id+"/roles", `{"roles":["user","system"]}`)
	if works(t, e, tok.access) {
		t.Error("after a change of roles, the old access token still works")
	}
	next := tokensOf(t, refresh(t, e, tok.refresh))
	r := do(t, "GET", e.URL+"/identify/me", nil, bearer(next.access))
	if r.status != 200 || !strings.Contains(r.body, `"roles":["system","user"]`) {
		t.Errorf("after refreshing: %d %s, want the new roles", r.status, r.body)
	}
	// Issued right after the change, in the same second: it works.
	fresh := loginTokens(t, e, u)
	adminDo("PUT", "/users/"+id+"/roles", `{"roles":["user"]}`)
	after := loginTokens(t, e, u)
	if works(t, e, fresh.access) || !works(t, e, after.access) {
		t.Error("a token issued after a change of roles must work, one issued before must not")
	}

	// Deleting the account kills its tokens too.
	adminDo("DELETE", "/users/"+id, "")
	if works(t, e, after.access) {
		t.Error("the deleted account's access token works")
	}
	assertProblem(t, do(t, "DELETE", e.URL+"/users/"+id+"/sessions", nil, bearer(admin)), http.StatusNotFound)
}

func jsonArray(t *testing.T, body string) []any {
	t.Helper()
	var v []any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body is not a JSON array: %v\n%s", err, body)
	}
	return v
}

// claim returns the claim name of an access token, read without checking
// its signature (the server has checked it).
func claim(t *testing.T, access, name string) any {
	t.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(payload, &m)
	}
	if err != nil {
		t.Fatalf("the token's payload: %v", err)
	}
	return m[name]
}

// refusedWithin polls e until the access token is refused, failing the
// test if it is still accepted after limit.
func refusedWithin(t *testing.T, e *apitest.Env, access string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); works(t, e, access); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the token is still accepted %v after its revocation", limit)
		}
	}
}

// Every access token can be revoked: one of no session (a machine
// client's, or one issued without a login) by its jti, refused at once on
// the replica that revoked it and within a second on another on the same
// database, while the same caller's other tokens keep working.
func TestRevokeTokenOfNoSession(t *testing.T) {
	t.Parallel()
	a, _, admin := adminEnv(t)
	b := apitest.New(t, apitest.Options{Replica: a})
	c := createClient(t, a, admin, `{"name":"revoked","roles":["system"]}`)
	u := a.CreateUser(t, "sessionless@example.com", "user")
	for name, issue := range map[string]func() string{
		"client": func() string { return clientToken(t, a, c).json(t)["access_token"].(string) },
		"user":   func() string { return a.Token(t, u) },
	} {
		t.Run(name, func(t *testing.T) {
			tok, other := issue(), issue()
			if claim(t, tok, "sid") != nil || !works(t, b, tok) {
				t.Fatal("want a working token of no session")
			}
			if r := revoke(t, a, "token", tok, "token_type_hint", "access_token"); r.status != 200 {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
			if works(t, a, tok) {
				t.Error("the revoked token works on the replica that revoked it")
			}
			refusedWithin(t, b, tok, time.Second)
			if !works(t, a, other) || !works(t, b, other) {
				t.Error("another token of the same caller was revoked too")
			}
		})
	}
	// A new client token works: revoking one revoked nothing else.
	if !works(t, b, clientToken(t, a, c).json(t)["access_token"].(string)) {
		t.Error("the client's next token is refused")
	}
}

// A reused refresh token ends its session whatever else the request asks:
// asking for another scope is no way to learn, without ending it, whether
// a stolen token's session lives. A retry within the reuse window is no
// reuse, and a scope it may not have is refused as before.
func TestRefreshReuseWithAnotherScope(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := e.CreateUser(t, "scoped-reuse@example.com", "user", "system")
	refreshScope := func(tok, scope string) response {
		return do(t, "POST", e.URL+"/token", form("grant_type", "refresh_token", "refresh_token", tok, "scope", scope), map[string]string{"Content-Type": formCT})
	}
	stolen := tokensOf(t, do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", u.Email, "password", u.Password, "scope", "user"),
		map[string]string{"Content-Type": formCT}))
	clk.Advance(time.Minute)
	latest := tokensOf(t, refresh(t, e, stolen.refresh))                              // the owner refreshes
	assertOAuthError(t, refreshScope(stolen.refresh, "system"), 400, "invalid_scope") // within the window
	if !works(t, e, latest.access) {
		t.Fatal("a retry within the reuse window ended the session")
	}
	clk.Advance(time.Minute)
	assertOAuthError(t, refreshScope(stolen.refresh, "system"), 400, "invalid_grant")
	if works(t, e, latest.access) {
		t.Error("the session's access token works after its refresh token was reused with another scope")
	}
	assertOAuthError(t, refresh(t, e, latest.refresh), 400, "invalid_grant")
}

// RFC 7009 section 2.1: a client that sends credentials to /token/revoke
// is authenticated as at /token (wrong ones are 401 invalid_client with a
// Basic challenge, and nothing is revoked), and a token issued to another
// client is not revoked by it, though the answer is 200. Without
// credentials, holding the token is proof enough; an empty Basic username
// (golang.org/x/oauth2 sends "Basic Og==") is no credentials.
func TestRevokeChecksClientCredentials(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	mine := createClient(t, e, admin, `{"name":"mine","roles":["system"]}`)
	theirs := createClient(t, e, admin, `{"name":"theirs","roles":["system"]}`)
	issue := func(c machine) string { return clientToken(t, e, c).json(t)["access_token"].(string) }
	revokeAs := func(auth string, kv ...string) response {
		h := map[string]string{"Content-Type": formCT}
		if auth != "" {
			h["Authorization"] = auth
		}
		return do(t, "POST", e.URL+"/token/revoke", form(kv...), h)
	}
	u := e.CreateUser(t, "public@example.com", "user")

	tests := []struct {
		name    string
		auth    string   // Authorization
		form    []string // besides token
		token   func() string
		status  int  // 200, 400 or 401
		revoked bool // whether the token is refused afterwards
	}{
		{"wrong secret", basic(mine.id, mine.secret+"x"), nil, func() string { return issue(mine) }, 401, false},
		{"unknown client", basic("cl_AAAAAAAAAAAAAAAAAAAAAA", mine.secret), nil, func() string { return issue(mine) }, 401, false},
		{"wrong secret in the form", "", []string{"client_id", mine.id, "client_secret", "wrong"}, func() string { return issue(mine) }, 401, false},
		{"client_id without a secret", "", []string{"client_id", mine.id}, func() string { return issue(mine) }, 401, false},
		{"credentials twice", basic(mine.id, mine.secret), []string{"client_id", mine.id, "client_secret", mine.secret}, func() string { return issue(mine) }, 400, false},
		{"another client's token", basic(mine.id, mine.secret), nil, func() string { return issue(theirs) }, 200, false},
		{"another client's token, form", "", []string{"client_id", mine.id, "client_secret", mine.secret}, func() string { return issue(theirs) }, 200, false},
		{"its own token", basic(mine.id, mine.secret), nil, func() string { return issue(mine) }, 200, true},
		{"its own token, form", "", []string{"client_id", mine.id, "client_secret", mine.secret}, func() string { return issue(mine) }, 200, true},
		// A password login's token is the first-party client's (client_id
		// rolegate): another client's revocation leaves it alone.
		{"a user's token from the password grant", basic(mine.id, mine.secret), nil, func() string { return loginTokens(t, e, u).access }, 200, false},
		{"a user's token from the password grant, no credentials", "", nil, func() string { return loginTokens(t, e, u).access }, 200, true},
		{"no credentials", "", nil, func() string { return issue(theirs) }, 200, true},
		{"empty Basic username", "Basic Og==", nil, func() string { return issue(theirs) }, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			r := revokeAs(tt.auth, append([]string{"token", tok}, tt.form...)...)
			switch tt.status {
			case 401:
				assertInvalidClient(t, r)
			case 400:
				assertOAuthError(t, r, 400, "invalid_request")
			default:
				if r.status != tt.status || r.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("revoke = %d %v %s, want %d", r.status, r.header, r.body, tt.status)
				}
			}
			if got := !works(t, e, tok); got != tt.revoked {
				t.Errorf("revoked = %v, want %v", got, tt.revoked)
			}
		})
	}
}

// Deleting a role is a change of roles for everyone holding it, accounts
// and machine clients alike: their tokens issued before are refused at
// once, and their next refresh (or client credentials grant) carries their
// roles without it; callers who do not hold it keep their tokens.
func TestDeleteRoleReachesIssuedTokens(t *testing.T) {
	t.Parallel()
	e, _, admin := adminEnv(t)
	if r := do(t, "POST", e.URL+"/roles", strings.NewReader(`{"name":"auditor"}`), jsonHeaders(admin)); r.status != 201 {
		t.Fatalf("create role = %d %s", r.status, r.body)
	}
	holder := e.CreateUser(t, "holder@example.com", "user", "auditor")
	bystander := e.CreateUser(t, "bystander@example.com", "user")
	c := createClient(t, e, admin, `{"name":"auditing","roles":["auditor","system"]}`)
	bot := createClient(t, e, admin, `{"name":"bystanding","roles":["system"]}`)
	roles := func(access string) string {
		t.Helper()
		r := do(t, "GET", e.URL+"/identify/me", nil, bearer(access))
		if r.status != 200 {
			t.Fatalf("GET /identify/me = %d %s", r.status, r.body)
		}
		var me struct{ Roles []string }
		_ = json.Unmarshal([]byte(r.body), &me)
		return strings.Join(me.Roles, " ")
	}
	held := loginTokens(t, e, holder)
	clientAccess := clientToken(t, e, c).json(t)["access_token"].(string)
	other, botAccess := loginTokens(t, e, bystander), clientToken(t, e, bot).json(t)["access_token"].(string)
	if roles(held.access) != "auditor user" || roles(clientAccess) != "auditor system" {
		t.Fatal("the tokens do not carry the role")
	}

	if r := do(t, "DELETE", e.URL+"/roles/auditor", nil, bearer(admin)); r.status != 204 {
		t.Fatalf("delete role = %d %s", r.status, r.body)
	}
	if works(t, e, held.access) {
		t.Error("an account's token still works after its role was deleted")
	}
	if works(t, e, clientAccess) {
		t.Error("a client's token still works after its role was deleted")
	}
	if !works(t, e, other.access) || !works(t, e, botAccess) || !works(t, e, admin) {
		t.Error("a token of a caller without the role was refused")
	}
	if got := roles(tokensOf(t, refresh(t, e, held.refresh)).access); got != "user" {
		t.Errorf("after a refresh the account's roles are %q, want user", got)
	}
	if got := roles(clientToken(t, e, c).json(t)["access_token"].(string)); got != "system" {
		t.Errorf("the client's next token has roles %q, want system", got)
	}
}

// TestTokensCarryAssurance: a password login's access token says how
// and when the person authenticated (amr, acr, auth_time), and a refresh
// keeps both, however much later, never raising them.
func TestTokensCarryAssurance(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := e.CreateUser(t, "kate@example.com", "user")
	first := loginTokens(t, e, u)
	p := jwtPayload(t, first.access)
	amr, _ := p["amr"].([]any)
	if len(amr) != 1 || amr[0] != "pwd" || p["acr"] != "urn:rolegate:acr:pwd" || p["auth_time"] != p["iat"] {
		t.Fatalf("claims %v: want amr [pwd], acr pwd and auth_time at the login", p)
	}
	clk.Advance(10 * time.Minute)
	next := tokensOf(t, refresh(t, e, first.refresh))
	q := jwtPayload(t, next.access)
	if q["auth_time"] != p["auth_time"] || q["acr"] != p["acr"] || fmt.Sprint(q["amr"]) != fmt.Sprint(p["amr"]) || q["iat"] == p["iat"] {
		t.Errorf("after a refresh: %v, want the login's amr, acr and auth_time", q)
	}
}
