package handlers_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/internal/apitest"
)

// auditPage fetches GET /audit-events with query q as admin.
func auditPage(t *testing.T, e *apitest.Env, admin string, q url.Values) (items []map[string]any, next string) {
	t.Helper()
	r := do(t, "GET", e.URL+"/audit-events?"+q.Encode(), nil, bearer(admin))
	var p struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &p) != nil {
		t.Fatalf("GET /audit-events?%s = %d %s", q.Encode(), r.status, r.body)
	}
	return p.Items, p.NextCursor
}

// Every kind of event is recorded by what causes it, with the request's
// context, and never a secret.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now, TrustLoopback: true})
	root := e.CreateUser(t, "root@example.com", "admin", "user")
	admin := tokensOf(t, loginFrom(t, e, "198.51.100.1", root.Email, root.Password)).access
	adminDo := func(method, path, body string) response {
		t.Helper()
		r := do(t, method, e.URL+path, strings.NewReader(body), jsonHeaders(admin))
		if r.status >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, r.status, r.body)
		}
		return r
	}

	// Accounts and roles.
	created := adminDo("POST", "/users", `{"email":"audited@example.com","password":"a long enough password","roles":["user"]}`).json(t)
	id := strconv.FormatInt(int64(created["id"].(float64)), 10)
	adminDo("PUT", "/users/"+id+"/roles", `{"roles":["user","system"]}`)
	adminDo("POST", "/users/"+id+"/disable", "")
	adminDo("POST", "/users/"+id+"/enable", "")
	adminDo("POST", "/roles", `{"name":"auditor"}`)
	adminDo("DELETE", "/roles/auditor", "")
	// Logins, sessions and tokens.
	assertOAuthError(t, loginFrom(t, e, "198.51.100.2", "audited@example.com", "wrong password"), 400, "invalid_grant")
	tok := tokensOf(t, loginFrom(t, e, "198.51.100.2", "audited@example.com", "a long enough password"))
	do(t, "POST", e.URL+"/identify/me/password", strings.NewReader(`{"current_password":"a long enough password","new_password":"another long password"}`), jsonHeaders(tok.access))
	clk.Advance(time.Minute)
	next := tokensOf(t, refresh(t, e, tok.refresh))
	clk.Advance(time.Minute)
	assertOAuthError(t, refresh(t, e, tok.refresh), 400, "invalid_grant") // reuse
	other := tokensOf(t, loginFrom(t, e, "198.51.100.2", "audited@example.com", "another long password"))
	revoke(t, e, "token", other.refresh)
	third := tokensOf(t, loginFrom(t, e, "198.51.100.2", "audited@example.com", "another long password"))
	sid := sessionList(t, do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(third.access)))[0]["id"].(string)
	if r := do(t, "DELETE", e.URL+"/identify/me/sessions/"+sid, nil, bearer(third.access)); r.status != 204 {
		t.Fatalf("end session = %d", r.status)
	}
	adminDo("DELETE", "/users/"+id+"/sessions", "")
	_ = next
	// Clients and keys.
	c := createClient(t, e, admin, `{"name":"audited client","roles":["system"]}`)
	adminDo("POST", "/clients/"+c.id+"/secret", "")
	adminDo("DELETE", "/clients/"+c.id, "")
	if _, _, err := e.Keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Throttling, then the account's deletion.
	for range 10 {
		loginFrom(t, e, "198.51.100.3", "throttled@example.com", "wrong password")
	}
	assertOAuthError(t, loginFrom(t, e, "198.51.100.3", "throttled@example.com", "wrong password"), 429, "slow_down")
	adminDo("DELETE", "/users/"+id, "")

	for _, typ := range []string{
		"login.succeeded", "login.failed", "login.throttled", "token.refreshed", "token.refresh_reused", "token.revoked",
		"session.ended", "user.created", "user.deleted", "user.disabled", "user.enabled", "user.roles_changed",
		"user.password_changed", "role.created", "role.deleted", "client.created", "client.deleted",
		"client.secret_rotated", "key.rotated",
	} {
		items, _ := auditPage(t, e, admin, url.Values{"type": {typ}})
		if len(items) == 0 {
			t.Errorf("no %s event", typ)
		}
		for _, ev := range items {
			raw, _ := json.Marshal(ev)
			for _, secret := range []string{"a long enough password", "another long password", tok.refresh, c.secret} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("a %s event holds a secret: %s", typ, raw)
				}
			}
		}
	}
	// The request's context: the address, the operation, the actor.
	failed, _ := auditPage(t, e, admin, url.Values{"type": {"login.failed"}, "user_id": {id}})
	if len(failed) != 1 || failed[0]["client_addr"] != "198.51.100.2" || failed[0]["operation_id"] != "createToken" ||
		failed[0]["detail"] != "wrong password" || failed[0]["request_id"] == "" {
		t.Errorf("the failed login: %v", failed)
	}
	disabled, _ := auditPage(t, e, admin, url.Values{"type": {"user.disabled"}})
	if len(disabled) != 1 || disabled[0]["actor_user_id"] != float64(root.ID) || disabled[0]["subject"] != "user:"+id {
		t.Errorf("the disabling: %v", disabled)
	}

	// Paging: every event once, newest first, a few at a time.
	all, _ := auditPage(t, e, admin, url.Values{"limit": {"200"}})
	var paged []any
	q := url.Values{"limit": {"3"}}
	for {
		items, next := auditPage(t, e, admin, q)
		for _, it := range items {
			paged = append(paged, it["id"])
		}
		if next == "" {
			break
		}
		q.Set("cursor", next)
	}
	if len(paged) != len(all) || len(all) < 19 {
		t.Errorf("paging saw %d events, one page %d", len(paged), len(all))
	}
	// A time range.
	future, _ := auditPage(t, e, admin, url.Values{"since": {clk.Now().Add(time.Hour).Format(time.RFC3339)}})
	if len(future) != 0 {
		t.Errorf("%d events in the future", len(future))
	}
	// Admins only.
	assertProblem(t, do(t, "GET", e.URL+"/audit-events", nil, bearer(e.Token(t, e.CreateUser(t, "nosy@example.com", "user")))), 403)
}

// Every security event names whom it concerns: the account
// (subject_user_id) or the machine client (subject client:<id>), and the
// session where there is one.
func TestAuditNamesWho(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now, TrustLoopback: true})
	root := e.CreateUser(t, "root@example.com", "admin", "user")
	admin := tokensOf(t, loginFrom(t, e, "198.51.100.1", root.Email, root.Password)).access
	u := e.CreateUser(t, "named@example.com", "user")
	uid := float64(u.ID)
	c := createClient(t, e, admin, `{"name":"named client","roles":["system"]}`)
	clientFrom := func(addr, secret string) response {
		t.Helper()
		return do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials"),
			map[string]string{"Content-Type": formCT, "Authorization": basic(c.id, secret), "X-Forwarded-For": addr})
	}
	// find returns the events of type typ, failing unless one has want's
	// fields.
	find := func(typ string, want map[string]any) {
		t.Helper()
		items, _ := auditPage(t, e, admin, url.Values{"type": {typ}})
	events:
		for _, ev := range items {
			for k, v := range want {
				if ev[k] != v {
					continue events
				}
			}
			return
		}
		t.Errorf("no %s event with %v among %v", typ, want, items)
	}

	// A reused refresh token: the event and the end of the session name
	// the account and the session.
	stolen := tokensOf(t, loginFrom(t, e, "198.51.100.2", u.Email, u.Password))
	sid := "session:" + claim(t, stolen.access, "sid").(string)
	clk.Advance(time.Minute)
	tokensOf(t, refresh(t, e, stolen.refresh))
	clk.Advance(time.Minute)
	assertOAuthError(t, refresh(t, e, stolen.refresh), 400, "invalid_grant")
	find("token.refresh_reused", map[string]any{"subject_user_id": uid, "subject": sid})
	find("session.ended", map[string]any{"subject_user_id": uid, "subject": sid})

	// Revocations: of a session, of a client's token, of a token of no
	// session.
	tok := tokensOf(t, loginFrom(t, e, "198.51.100.2", u.Email, u.Password))
	revoke(t, e, "token", tok.refresh)
	find("token.revoked", map[string]any{"subject_user_id": uid, "subject": "session:" + claim(t, tok.access, "sid").(string)})
	tok = tokensOf(t, loginFrom(t, e, "198.51.100.2", u.Email, u.Password))
	revoke(t, e, "token", tok.access)
	find("token.revoked", map[string]any{"subject_user_id": uid, "subject": "session:" + claim(t, tok.access, "sid").(string)})
	revoke(t, e, "token", clientFrom("198.51.100.2", c.secret).json(t)["access_token"].(string))
	find("token.revoked", map[string]any{"subject": "client:" + c.id})
	revoke(t, e, "token", e.Token(t, u))
	find("token.revoked", map[string]any{"subject_user_id": uid, "subject": "user:" + itoa(u.ID)})

	// A failed client login names the client it claimed to be.
	assertInvalidClient(t, clientFrom("198.51.100.3", "wrong"))
	find("login.failed", map[string]any{"subject": "client:" + c.id, "client_addr": "198.51.100.3"})

	// Throttling names the account, and the client.
	for range 10 {
		assertOAuthError(t, loginFrom(t, e, "198.51.100.4", u.Email, "wrong password"), 400, "invalid_grant")
	}
	assertOAuthError(t, loginFrom(t, e, "198.51.100.4", u.Email, u.Password), 429, "slow_down")
	find("login.throttled", map[string]any{"subject_user_id": uid, "subject": "user:" + itoa(u.ID)})
	for range 10 { // budgets are per account and client network
		assertInvalidClient(t, clientFrom("198.51.100.5", "wrong"))
	}
	assertOAuthError(t, clientFrom("198.51.100.5", c.secret), 429, "slow_down")
	find("login.throttled", map[string]any{"subject": "client:" + c.id})
}

// Each filter of GET /audit-events, alone and together, pages through
// exactly the events it names, newest first, ties on the time broken by
// id; an event that names the account as both actor and subject comes once.
func TestAuditFilters(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	admin := e.Token(t, e.CreateUser(t, "root@example.com", "admin"))
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	const u1, u2, u3 = 9001, 9002, 9003
	users := []*int64{ptr[int64](u1), ptr[int64](u2), ptr[int64](u3), nil}
	for i := range 40 {
		actor, subject := users[i%4], users[(i/2)%4]
		at := base.Add(time.Duration(i/3) * time.Minute) // three events a minute: ties
		_, err := e.Pool.Exec(ctx, `INSERT INTO audit_events (at, type, actor_user_id, subject_user_id, subject) VALUES ($1, $2, $3, $4, '')`,
			at, []string{"test.a", "test.b", "test.c"}[i%3], actor, subject)
		if err != nil {
			t.Fatal(err)
		}
	}
	type event struct {
		id             int64
		at             time.Time
		typ            string
		actor, subject *int64
	}
	var all []event
	rows, err := e.Pool.Query(ctx, "SELECT id, at, type, actor_user_id, subject_user_id FROM audit_events ORDER BY at DESC, id DESC")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ev event
		if err := rows.Scan(&ev.id, &ev.at, &ev.typ, &ev.actor, &ev.subject); err != nil {
			t.Fatal(err)
		}
		all = append(all, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	is := func(p *int64, v int64) bool { return p != nil && *p == v }
	minute := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name  string
		query url.Values
		keep  func(event) bool
	}{
		{"everything", url.Values{}, func(event) bool { return true }},
		{"type", url.Values{"type": {"test.b"}}, func(ev event) bool { return ev.typ == "test.b" }},
		{"a type nobody recorded", url.Values{"type": {"test.none"}}, func(event) bool { return false }},
		{"user", url.Values{"user_id": {"9001"}}, func(ev event) bool { return is(ev.actor, u1) || is(ev.subject, u1) }},
		{"user and type", url.Values{"user_id": {"9002"}, "type": {"test.a"}}, func(ev event) bool {
			return ev.typ == "test.a" && (is(ev.actor, u2) || is(ev.subject, u2))
		}},
		{"since", url.Values{"since": {minute(7).Format(time.RFC3339)}}, func(ev event) bool { return !ev.at.Before(minute(7)) }},
		{"until", url.Values{"until": {minute(4).Format(time.RFC3339)}}, func(ev event) bool { return ev.at.Before(minute(4)) }},
		{"type in a range", url.Values{"type": {"test.c"}, "since": {minute(2).Format(time.RFC3339)}, "until": {minute(9).Format(time.RFC3339)}}, func(ev event) bool {
			return ev.typ == "test.c" && !ev.at.Before(minute(2)) && ev.at.Before(minute(9))
		}},
		{"user in a range", url.Values{"user_id": {"9003"}, "since": {minute(3).Format(time.RFC3339)}, "until": {minute(11).Format(time.RFC3339)}}, func(ev event) bool {
			return (is(ev.actor, u3) || is(ev.subject, u3)) && !ev.at.Before(minute(3)) && ev.at.Before(minute(11))
		}},
	}
	for _, tt := range tests {
		var want []int64
		for _, ev := range all {
			if tt.keep(ev) {
				want = append(want, ev.id)
			}
		}
		for _, limit := range []string{"1", "4", "200"} {
			t.Run(tt.name+" by "+limit, func(t *testing.T) {
				t.Parallel()
				q := url.Values{"limit": {limit}}
				for k, v := range tt.query {
					q[k] = v
				}
				var got []int64
				for range 100 {
					items, next := auditPage(t, e, admin, q)
					for _, it := range items {
						got = append(got, int64(it["id"].(float64)))
					}
					if next == "" {
						break
					}
					q.Set("cursor", next)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			})
		}
	}
}
