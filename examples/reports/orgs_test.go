package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
)

// An organization's reports, whose x-org operations the example enforces
// with the memberships of a live rolegate: members read, editors and
// owners write, the global admin reads (it is listed there) but does not
// write, and anyone else (or any other organization) gets 404; a change of
// membership made in rolegate is in force in the example within a second,
// with no call to rolegate per request.
func TestExampleOrgRoles(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	boss := e.CreateUser(t, "boss@example.com", "admin")
	owner := e.CreateUser(t, "owner@example.com", "user")
	editor := e.CreateUser(t, "editor@example.com", "user")
	viewer := e.CreateUser(t, "viewer@example.com", "user")
	outsider := e.CreateUser(t, "outsider@example.com", "user")
	ownerToken := e.Token(t, owner)
	r := do(t, "POST", e.URL+"/orgs", ownerToken, `{"slug": "acme", "name": "Acme"}`)
	var org struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &org); err != nil || r.status != 201 {
		t.Fatalf("POST /orgs = %d %s", r.status, r.body)
	}
	member := func(u apitest.User, roles ...string) {
		t.Helper()
		body := `{"roles": ["` + strings.Join(roles, `", "`) + `"]}`
		if r := do(t, "PUT", fmt.Sprintf("%s/orgs/%d/members/%d", e.URL, org.ID, u.ID), ownerToken, body); r.status != 200 {
			t.Fatalf("PUT member %s = %d %s", u.Email, r.status, r.body)
		}
	}
	member(editor, "editor")
	member(viewer, "viewer")
	id, secret := feedClient(t, e, e.Token(t, boss))
	base := start(t, e.URL, id, secret)
	if r := do(t, "GET", base+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("/readyz = %d %s", r.status, r.body)
	}

	reports := fmt.Sprintf("%s/orgs/%d/reports", base, org.ID)
	const title = `{"title": "Q3"}`
	tests := []struct {
		name, method, url string
		who               apitest.User
		body              string
		status            int
	}{
		{"an editor writes", "POST", reports, editor, title, 201},
		{"an owner writes", "POST", reports, owner, title, 201},
		{"a viewer reads", "GET", reports, viewer, "", 200},
		{"a viewer may not write", "POST", reports, viewer, title, 403},
		{"the admin reads, as listed", "GET", reports, boss, "", 200},
		{"the admin is no member, and not listed to write", "POST", reports, boss, title, 404},
		{"someone who is no member", "GET", reports, outsider, "", 404},
		{"no member writes", "POST", reports, outsider, title, 404},
		{"an organization that does not exist", "GET", base + "/orgs/999999/reports", viewer, "", 404},
		// Access is judged before the request's shape, as in rolegate:
		// acme names no organization the caller is a member of.
		{"not an organization's id", "GET", base + "/orgs/acme/reports", viewer, "", 404},
	}
	for _, tt := range tests {
		r := do(t, tt.method, tt.url, e.Token(t, tt.who), tt.body)
		if r.status != tt.status {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.method, tt.url, r.status, r.body, tt.status)
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", tt.name, r.header.Get("Content-Type"))
		}
	}
	r = do(t, "POST", reports, e.Token(t, viewer), title)
	var refusal struct {
		RequiredRoles []string `json:"required_roles"`
	}
	if err := json.Unmarshal([]byte(r.body), &refusal); err != nil || !slices.Contains(refusal.RequiredRoles, "org:editor") {
		t.Errorf("a viewer's 403: %s", r.body)
	}
	if r := do(t, "GET", reports, e.Token(t, viewer), ""); strings.Count(r.body, `"org_id":`) != 2 || !strings.Contains(r.body, `"author":"editor@example.com"`) {
		t.Errorf("the organization's reports: %s", r.body)
	}

	// Changes made in rolegate: the outsider joins and leaves, again and
	// again, then the viewer becomes an editor.
	outsiderToken := e.Token(t, outsider)
	var lags []time.Duration
	for i := range 20 {
		want := 200
		if i%2 == 0 {
			member(outsider, "viewer")
		} else {
			want = 404
			if r := do(t, "DELETE", fmt.Sprintf("%s/orgs/%d/members/%d", e.URL, org.ID, outsider.ID), ownerToken, ""); r.status != 204 {
				t.Fatalf("DELETE member = %d %s", r.status, r.body)
			}
		}
		lags = append(lags, within(t, time.Second, fmt.Sprintf("change %d", i), func() bool {
			return do(t, "GET", reports, outsiderToken, "").status == want
		}))
	}
	slices.Sort(lags)
	t.Logf("a membership change in rolegate to the example's next request: p50 %v, p99 %v (polled every 20 ms)", lags[len(lags)/2], lags[len(lags)*99/100])
	member(viewer, "editor")
	within(t, time.Second, "the viewer made editor", func() bool {
		return do(t, "POST", reports, e.Token(t, viewer), `{"title": "promoted"}`).status == 201
	})
}
