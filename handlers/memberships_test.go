package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
)

// membershipOf decodes an event membership's data.
func membershipOf(t *testing.T, ev event) (org, user int64, roles []string) {
	t.Helper()
	var m struct {
		Org   int64     `json:"org_id"`
		User  int64     `json:"user_id"`
		Roles *[]string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil || ev.name != "membership" || m.Org == 0 || m.User == 0 || m.Roles == nil {
		t.Fatalf("event %q %q: %v", ev.name, ev.data, err)
	}
	return m.Org, m.User, *m.Roles
}

// rolesOf returns the roles the last event of events for user in org
// says (nil: no event for them).
func rolesOf(t *testing.T, events []event, org int64, user apitest.User) []string {
	t.Helper()
	var roles []string
	for _, ev := range events {
		if ev.name != "membership" {
			continue
		}
		if o, u, r := membershipOf(t, ev); o == org && u == user.ID {
			roles = append([]string{}, r...)
		}
	}
	return roles
}

// The memberships feed through the API: only resource-server tokens; from
// the start, a reset and every membership, then caught-up with the id to
// resume from; changes as they happen, on this replica and made on
// another, the last event of each change with an id; a resume sends the
// memberships changed since (their state now) without a reset, and one
// from before what the log keeps starts over; draining ends the stream.
func TestMembershipFeed(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t, apitest.Options{FeedStreams: 8})
	e := o.e
	admin := e.Token(t, e.CreateUser(t, "root@example.com", "admin", "user"))
	c := createClient(t, e, admin, `{"name":"reports","roles":["resource-server"]}`)
	feed := clientToken(t, e, c, "scope", "resource-server").json(t)["access_token"].(string)

	assertProblem(t, do(t, "GET", e.URL+"/memberships/events", nil, nil), 401)
	if m := assertProblem(t, do(t, "GET", e.URL+"/memberships/events", nil, bearer(admin)), 403); fmt.Sprint(m["required_roles"]) != "[resource-server]" {
		t.Errorf("as an admin: required_roles %v", m["required_roles"])
	}
	assertProblem(t, do(t, "GET", e.URL+"/memberships/events", nil, map[string]string{"Authorization": "Bearer " + feed, "Last-Event-ID": "-1"}), 400)

	// From the start: a reset, each of the three memberships once, caught up.
	s := openEvents(t, e.URL+"/memberships/events", feed, "")
	all := s.until(t, caughtUp)
	if all[0].name != "reset" {
		t.Errorf("the first event is %q, want reset", all[0].name)
	}
	if n := len(all); n != 5 {
		t.Errorf("%d events, want reset, 3 memberships and caught-up: %v", n, all)
	}
	for _, m := range []struct {
		u    apitest.User
		want []string
	}{{o.owner, []string{"owner"}}, {o.editor, []string{"editor"}}, {o.viewer, []string{"viewer"}}, {o.outside, nil}} {
		if got := rolesOf(t, all, o.org, m.u); !slices.Equal(got, m.want) {
			t.Errorf("%s: %v, want %v", m.u.Email, got, m.want)
		}
	}
	up := all[len(all)-1]
	if up.id == "" || up.data != fmt.Sprintf(`{"seq":%s}`, up.id) {
		t.Errorf("caught-up id %q data %q", up.id, up.data)
	}

	// Changes as they happen: made here, then on another replica (which
	// this one hears of through the log's notification).
	if r := o.member(t, o.outside, "viewer", "editor"); r.status != 200 {
		t.Fatalf("adding a member: %d %s", r.status, r.body)
	}
	got := s.until(t, func(ev event) bool { return ev.name == "membership" && ev.id != "" })
	if roles := rolesOf(t, got, o.org, o.outside); !slices.Equal(roles, []string{"editor", "viewer"}) {
		t.Errorf("the member added: %v", got)
	}
	other := apitest.New(t, apitest.Options{Replica: e})
	if r := do(t, "DELETE", fmt.Sprintf("%s/orgs/%d/members/%d", other.URL, o.org, o.viewer.ID), nil, bearer(other.Token(t, o.owner))); r.status != 204 {
		t.Fatalf("removing a member on the other replica: %d %s", r.status, r.body)
	}
	got = s.until(t, func(ev event) bool { return ev.name == "membership" && ev.id != "" })
	if roles := rolesOf(t, got, o.org, o.viewer); roles == nil || len(roles) != 0 {
		t.Errorf("the member removed: %v, want roles []", got)
	}

	// A resume from the first caught-up: the two memberships changed since,
	// as they are now, no reset (the log's first rows are made older than
	// the 30 seconds a resume reads again).
	if _, err := e.Pool.Exec(context.Background(), "UPDATE org_changes SET created_at = now() - interval '5 minutes' WHERE seq <= $1", up.id); err != nil {
		t.Fatal(err)
	}
	resumed := openEvents(t, e.URL+"/memberships/events", feed, up.id).until(t, caughtUp)
	if len(resumed) != 3 || rolesOf(t, resumed, o.org, o.owner) != nil ||
		!slices.Equal(rolesOf(t, resumed, o.org, o.outside), []string{"editor", "viewer"}) || len(rolesOf(t, resumed, o.org, o.viewer)) != 0 {
		t.Errorf("resumed from %s: %v", up.id, resumed)
	}
	// One from a position the log no longer holds starts over.
	if _, err := e.Pool.Exec(context.Background(), "DELETE FROM org_changes WHERE seq <= $1", up.id); err != nil {
		t.Fatal(err)
	}
	over := openEvents(t, e.URL+"/memberships/events", feed, "1").until(t, caughtUp)
	if over[0].name != "reset" || len(over) != 5 || rolesOf(t, over, o.org, o.viewer) != nil {
		t.Errorf("resumed from before the log: %v", over)
	}

	// Draining ends the stream at once, and refuses new ones.
	e.Drain()
	select {
	case <-s.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("an open stream outlived the drain by 2s")
	}
	assertProblem(t, do(t, "GET", e.URL+"/memberships/events", nil, bearer(feed)), 503)
}
