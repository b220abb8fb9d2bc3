package handlers_test

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
)

// orgEnv is rolegate with an organization whose owner, editor and viewer
// are people of their own, and someone who is no member.
type orgEnv struct {
	e                              *apitest.Env
	org                            int64
	owner, editor, viewer, outside apitest.User
}

func newOrgEnv(t *testing.T, opts ...apitest.Options) orgEnv {
	t.Helper()
	e := apitest.New(t, opts...)
	o := orgEnv{e: e, owner: e.CreateUser(t, "owner@example.com", "user"), editor: e.CreateUser(t, "editor@example.com", "user"),
		viewer: e.CreateUser(t, "viewer@example.com", "user"), outside: e.CreateUser(t, "outside@example.com", "user")}
	r := do(t, "POST", e.URL+"/orgs", strings.NewReader(`{"slug":"acme","name":"Acme"}`), jsonHeaders(e.Token(t, o.owner)))
	id, _ := r.json(t)["id"].(float64)
	if r.status != 201 || id == 0 {
		t.Fatalf("POST /orgs = %d %s", r.status, r.body)
	}
	o.org = int64(id)
	o.member(t, o.editor, "editor")
	o.member(t, o.viewer, "viewer")
	return o
}

func (o orgEnv) url(path string) string { return fmt.Sprintf("%s/orgs/%d%s", o.e.URL, o.org, path) }

func (o orgEnv) member(t *testing.T, u apitest.User, roles ...string) response {
	t.Helper()
	body := `{"roles":["` + strings.Join(roles, `","`) + `"]}`
	return do(t, "PUT", o.url(fmt.Sprintf("/members/%d", u.ID)), strings.NewReader(body), jsonHeaders(o.e.Token(t, o.owner)))
}

// TestOrgRoles: within an organization, a viewer lists its notes but does
// not create one, an editor creates one, someone who is no member gets
// 404 whatever they ask, the author changes their own note and another
// viewer does not, and the global admin reaches the organization's
// operations that list admin, and no others.
func TestOrgRoles(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t)
	e := o.e
	note := `{"document_src":"reports/q3.pdf","title":"Revenue","body":"Page 3."}`
	if r := do(t, "POST", o.url("/notes"), strings.NewReader(note), jsonHeaders(e.Token(t, o.viewer))); r.status != 403 {
		t.Errorf("a viewer creates a note: %d, want 403", r.status)
	} else if m := r.json(t); !strings.Contains(fmt.Sprint(m["required_roles"]), "org:editor") {
		t.Errorf("required_roles = %v, want the org roles", m["required_roles"])
	}
	r := do(t, "POST", o.url("/notes"), strings.NewReader(note), jsonHeaders(e.Token(t, o.editor)))
	id, _ := r.json(t)["id"].(float64)
	if r.status != 201 {
		t.Fatalf("an editor creates a note: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", o.url("/notes"), nil, bearer(e.Token(t, o.viewer))); r.status != 200 || !strings.Contains(r.body, "Revenue") {
		t.Errorf("a viewer lists: %d %s", r.status, r.body)
	}
	for _, path := range []string{"", "/notes", fmt.Sprintf("/notes/%d", int64(id)), "/members"} {
		if r := do(t, "GET", o.url(path), nil, bearer(e.Token(t, o.outside))); r.status != 404 {
			t.Errorf("GET %s by no member: %d, want 404", path, r.status)
		}
	}
	if r := do(t, "GET", e.URL+"/orgs/99999", nil, bearer(e.Token(t, o.outside))); r.status != 404 {
		t.Errorf("an organization that does not exist: %d, want 404 (the same)", r.status)
	}
	if r := do(t, "GET", e.URL+"/notes", nil, bearer(e.Token(t, o.editor))); r.status != 200 || strings.Contains(r.body, "Revenue") {
		t.Errorf("the editor's personal notes hold the org's note: %s", r.body)
	}

	// The author (a viewer now) changes their note; another viewer does not.
	o.member(t, o.editor, "viewer")
	patch := `{"title":"Revenue, corrected"}`
	if r := do(t, "PATCH", o.url(fmt.Sprintf("/notes/%d", int64(id))), strings.NewReader(patch), jsonHeaders(e.Token(t, o.editor))); r.status != 200 {
		t.Errorf("the author updates: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", o.url(fmt.Sprintf("/notes/%d", int64(id))), nil, bearer(e.Token(t, o.viewer))); r.status != 403 {
		t.Errorf("another viewer deletes: %d, want 403", r.status)
	}

	// The global admin: where x-roles lists it, without being a member.
	admin := e.CreateUser(t, "root@example.com", "admin")
	if r := do(t, "GET", o.url(""), nil, bearer(e.Token(t, admin))); r.status != 200 {
		t.Errorf("the admin gets the organization: %d", r.status)
	}
	if r := do(t, "GET", o.url("/members"), nil, bearer(e.Token(t, admin))); r.status != 200 || !strings.Contains(r.body, "viewer@example.com") {
		t.Errorf("the admin lists the members: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", o.url("/notes"), nil, bearer(e.Token(t, admin))); r.status != 404 {
		t.Errorf("the admin reads notes, where admin is not listed: %d, want 404", r.status)
	}
	// A custom role, given to a member.
	if r := do(t, "POST", o.url("/roles"), strings.NewReader(`{"name":"auditor"}`), jsonHeaders(e.Token(t, o.owner))); r.status != 201 || !strings.Contains(r.body, "auditor") {
		t.Fatalf("creating a role: %d %s", r.status, r.body)
	}
	if r := o.member(t, o.outside, "auditor"); r.status != 200 {
		t.Errorf("a member with the custom role: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", o.url(""), nil, bearer(e.Token(t, o.outside))); r.status != 200 {
		t.Errorf("a member (org:*) with only a custom role gets the organization: %d", r.status)
	}
	if r := o.member(t, o.viewer, "nosuch"); r.status != 400 {
		t.Errorf("an unknown role: %d, want 400", r.status)
	}
	mine := do(t, "GET", e.URL+"/orgs", nil, bearer(e.Token(t, o.viewer)))
	if items, _ := mine.json(t)["items"].([]any); len(items) != 1 {
		t.Errorf("the viewer's organizations: %s", mine.body)
	}
}

// TestLastOwner: twenty owners demoting themselves at once leave one
// owner, whatever the order; the last cannot leave nor be demoted.
func TestLastOwner(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t)
	e := o.e
	owners := []apitest.User{o.owner}
	for i := range 19 {
		u := e.CreateUser(t, fmt.Sprintf("owner%d@example.com", i), "user")
		if r := o.member(t, u, "owner"); r.status != 200 {
			t.Fatalf("setup: %d %s", r.status, r.body)
		}
		owners = append(owners, u)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(owners))
	for i, u := range owners {
		wg.Go(func() {
			r := do(t, "PUT", o.url(fmt.Sprintf("/members/%d", u.ID)), strings.NewReader(`{"roles":["viewer"]}`), jsonHeaders(e.Token(t, u)))
			statuses[i] = r.status
		})
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
			refused++
		}
	}
	if ok != 19 || refused != 1 {
		t.Fatalf("20 owners demoting themselves at once: %v, want 19 × 200 and one 409", statuses)
	}
	var last apitest.User
	for i, s := range statuses {
		if s == 409 {
			last = owners[i]
		}
	}
	if r := do(t, "DELETE", o.url(fmt.Sprintf("/members/%d", last.ID)), nil, bearer(e.Token(t, last))); r.status != 409 {
		t.Errorf("the last owner leaving: %d, want 409", r.status)
	}
	r := do(t, "GET", o.url("/members?limit=200"), nil, bearer(e.Token(t, last)))
	if n := strings.Count(r.body, `"owner"`); n != 1 {
		t.Errorf("%d owners remain, want 1: %s", n, r.body)
	}
}

// TestOrgChangeReachesReplica: a membership given or taken on one replica
// is in force on another for its next request, within a second: the
// gate's memberships follow the organizations' change log. The p50 and
// p99 over 50 changes are logged.
func TestOrgChangeReachesReplica(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t)
	replica := apitest.New(t, apitest.Options{Replica: o.e})
	u := o.e.CreateUser(t, "newcomer@example.com", "user")
	tok := replica.Token(t, u)
	var lags []time.Duration
	for i := range 50 {
		var change response
		want := 200
		if i%2 == 0 {
			change = o.member(t, u, "viewer")
		} else {
			change = do(t, "DELETE", o.url(fmt.Sprintf("/members/%d", u.ID)), nil, bearer(o.e.Token(t, o.owner)))
			want = 404
		}
		if change.status != 200 && change.status != 204 {
			t.Fatalf("change %d: %d %s", i, change.status, change.body)
		}
		start := time.Now()
		for {
			r := do(t, "GET", fmt.Sprintf("%s/orgs/%d/notes", replica.URL, o.org), nil, bearer(tok))
			if r.status == want {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("change %d not in force on the replica after 1 s: %d, want %d", i, r.status, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	t.Logf("membership change to the replica's next request: p50 %v, p99 %v", lags[len(lags)/2], lags[len(lags)*99/100])
}

// TestDeleteLastOwner: an account that is an organization's only owner is
// not deleted (409) until another member is made owner.
func TestDeleteLastOwner(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t)
	admin := o.e.CreateUser(t, "root@example.com", "admin")
	del := func() response {
		return do(t, "DELETE", fmt.Sprintf("%s/users/%d", o.e.URL, o.owner.ID), nil, bearer(o.e.Token(t, admin)))
	}
	if r := del(); r.status != 409 || !strings.Contains(r.body, "only owner") {
		t.Fatalf("deleting the only owner: %d %s, want 409", r.status, r.body)
	}
	if r := o.member(t, o.editor, "owner"); r.status != 200 {
		t.Fatal(r.body)
	}
	if r := del(); r.status != 204 {
		t.Errorf("deleting an owner who is not the only one: %d %s", r.status, r.body)
	}
}

// TestStaleOwnerRefused: the gate admits an owner from the replica's copy
// of the memberships, which may be up to a second behind a demotion; the
// changes an owner makes check again in their transaction. The copy is
// made stale here by demoting an owner with the change log's triggers
// off, which the copy never hears of.
func TestStaleOwnerRefused(t *testing.T) {
	t.Parallel()
	o := newOrgEnv(t)
	second := o.e.CreateUser(t, "second@example.com", "user")
	if r := o.member(t, second, "owner"); r.status != 200 {
		t.Fatalf("a second owner: %d %s", r.status, r.body)
	}
	ctx := t.Context()
	tx, err := o.e.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{"SET LOCAL session_replication_role = replica",
		fmt.Sprintf("UPDATE org_members SET roles = '{viewer}' WHERE org_id = %d AND user_id = %d", o.org, second.ID)} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tok := o.e.Token(t, second)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"makes someone owner", "PUT", fmt.Sprintf("/members/%d", second.ID), `{"roles":["owner"]}`, 403},
		{"removes another member", "DELETE", fmt.Sprintf("/members/%d", o.editor.ID), "", 403},
		{"creates a role", "POST", "/roles", `{"name":"auditor"}`, 403},
		{"deletes the organization", "DELETE", "", "", 403},
		{"leaves", "DELETE", fmt.Sprintf("/members/%d", second.ID), "", 204},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		r := do(t, tc.method, o.url(tc.path), body, jsonHeaders(tok))
		if r.status != tc.want {
			t.Errorf("the demoted owner %s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, r.status, r.body, tc.want)
		}
		if tc.want == 403 {
			if m := assertProblem(t, r, 403); fmt.Sprint(m["required_roles"]) != "[org:owner admin]" {
				t.Errorf("%s: required_roles %v", tc.name, m["required_roles"])
			}
		}
	}
	// The owner the database has is not refused.
	if r := o.member(t, o.viewer, "editor"); r.status != 200 {
		t.Errorf("the owner: %d %s", r.status, r.body)
	}
}
