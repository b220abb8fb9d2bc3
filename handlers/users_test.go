package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/apitest"
	"github.com/rolegate/rolegate/gen/api"
)

// decode unmarshals a JSON response body into a T.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("body is not a %T: %v\n%s", v, err, r.body)
	}
	return v
}

// adminEnv starts a server with one admin and returns the admin's token.
func adminEnv(t *testing.T) (*apitest.Env, apitest.User, string) {
	t.Helper()
	e := apitest.New(t)
	admin := e.CreateUser(t, "root@example.com", "admin", "user")
	return e, admin, e.Token(t, admin)
}

// getUser fetches an account through the API and fails unless it exists.
func getUser(t *testing.T, e *apitest.Env, tok string, id int64) api.User {
	t.Helper()
	r := do(t, "GET", e.URL+"/users/"+itoa(id), nil, bearer(tok))
	if r.status != 200 {
		t.Fatalf("GET /users/%d = %d %s", id, r.status, r.body)
	}
	return decode[api.User](t, r)
}

func countRows(t *testing.T, e *apitest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An admin cannot lock themselves out, names stay unique, and the spec's
// roles cannot be deleted: each is 409 and changes nothing.
func TestUserAdminConflicts(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	e.CreateUser(t, "taken@example.com", "user")
	self := "/users/" + itoa(admin.ID)
	tests := []struct {
		name, method, path, body, wantDetail string
	}{
		{"duplicate email in another case", "POST", "/users", `{"email":"TAKEN@Example.com","password":"long enough password","roles":["user"]}`, "An account with this email exists."},
		{"remove own admin role", "PUT", self + "/roles", `{"roles":["user"]}`, "You cannot remove your own admin role."},
		{"remove all own roles", "PUT", self + "/roles", `{"roles":[]}`, "You cannot remove your own admin role."},
		{"disable self", "POST", self + "/disable", "", "You cannot disable your own account."},
		{"delete self", "DELETE", self, "", "You cannot delete your own account."},
		{"delete a spec role", "DELETE", "/roles/user", "", "The API spec names this role."},
		{"delete the admin role", "DELETE", "/roles/admin", "", "The API spec names this role."},
		{"create an existing role", "POST", "/roles", `{"name":"system"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r response
			if tt.body != "" {
				r = do(t, tt.method, e.URL+tt.path, strings.NewReader(tt.body), jsonHeaders(tok))
			} else {
				r = do(t, tt.method, e.URL+tt.path, nil, bearer(tok))
			}
			m := assertProblem(t, r, 409)
			if tt.wantDetail != "" && m["detail"] != tt.wantDetail {
				t.Errorf("detail = %v, want %q", m["detail"], tt.wantDetail)
			}
		})
	}
	t.Cleanup(func() {
		got := getUser(t, e, tok, admin.ID)
		if got.Disabled || !slices.Equal(got.Roles, []string{"admin", "user"}) {
			t.Errorf("admin after the refused requests = %+v", got)
		}
		if n := countRows(t, e, "SELECT count(*) FROM users WHERE lower(email) = 'taken@example.com'"); n != 1 {
			t.Errorf("%d accounts with the taken email", n)
		}
		if n := countRows(t, e, "SELECT count(*) FROM roles WHERE name IN ('user', 'admin', 'system')"); n != 3 {
			t.Errorf("%d of the spec's roles left, want 3", n)
		}
	})
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	r := do(t, "POST", e.URL+"/users", strings.NewReader(`{"email":"New@Example.com","password":"a long enough password","roles":["user","system"]}`), jsonHeaders(tok))
	if r.status != 201 {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	created := decode[api.User](t, r)
	if got, want := r.header.Get("Location"), "/users/"+itoa(created.Id); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if created.Email != "New@Example.com" || created.Disabled || !slices.Equal(created.Roles, []string{"system", "user"}) {
		t.Errorf("created = %+v", created)
	}
	if diff := cmp.Diff(created, getUser(t, e, tok, created.Id)); diff != "" {
		t.Errorf("GET after create (-created +got):\n%s", diff)
	}
	if l := login(t, e, "new@example.com", "a long enough password"); l.status != 200 {
		t.Errorf("login as the new account = %d %s", l.status, l.body)
	}

	bad := []struct{ name, body string }{
		{"unknown role", `{"email":"ghost@example.com","password":"a long enough password","roles":["user","nosuchrole"]}`},
		{"short password", `{"email":"ghost@example.com","password":"short","roles":[]}`},
		{"not an email", `{"email":"ghost","password":"a long enough password","roles":[]}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, do(t, "POST", e.URL+"/users", strings.NewReader(tt.body), jsonHeaders(tok)), 400)
		})
	}
	if n := countRows(t, e, "SELECT count(*) FROM users WHERE email LIKE 'ghost%'"); n != 0 {
		t.Errorf("refused creations left %d accounts", n)
	}
}

// A disabled account cannot log in; enabled again, it can.
func TestDisableAndEnableUser(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	bob := e.CreateUser(t, "bob@example.com", "user")
	before := getUser(t, e, tok, bob.ID)
	if r := login(t, e, bob.Email, bob.Password); r.status != 200 {
		t.Fatalf("login before disabling = %d %s", r.status, r.body)
	}

	r := do(t, "POST", e.URL+"/users/"+itoa(bob.ID)+"/disable", nil, bearer(tok))
	if r.status != 200 {
		t.Fatalf("disable = %d %s", r.status, r.body)
	}
	disabled := decode[api.User](t, r)
	if !disabled.Disabled || !disabled.UpdatedAt.After(before.UpdatedAt) || !slices.Equal(disabled.Roles, []string{"user"}) {
		t.Errorf("disabled = %+v, want disabled with a later updated_at than %v", disabled, before.UpdatedAt)
	}
	r = login(t, e, bob.Email, bob.Password)
	if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Errorf("login while disabled = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	// Disabling again changes nothing.
	if r := do(t, "POST", e.URL+"/users/"+itoa(bob.ID)+"/disable", nil, bearer(tok)); r.status != 200 || !decode[api.User](t, r).UpdatedAt.Equal(disabled.UpdatedAt) {
		t.Errorf("disabling twice = %d %s, want 200 and updated_at unchanged", r.status, r.body)
	}

	r = do(t, "POST", e.URL+"/users/"+itoa(bob.ID)+"/enable", nil, bearer(tok))
	if r.status != 200 || decode[api.User](t, r).Disabled {
		t.Fatalf("enable = %d %s", r.status, r.body)
	}
	if r := login(t, e, bob.Email, bob.Password); r.status != 200 {
		t.Errorf("login after enabling = %d %s", r.status, r.body)
	}
}

// Deleting an account deletes its notes and roles, and nobody else's.
func TestDeleteUserRemovesTheirNotes(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	carol := e.CreateUser(t, "carol@example.com", "user")
	for _, u := range []apitest.User{carol, carol, admin} {
		r := do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"d.pdf","title":"t","body":"b"}`), jsonHeaders(e.Token(t, u)))
		if r.status != 201 {
			t.Fatalf("create note = %d %s", r.status, r.body)
		}
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes WHERE owner_id = $1", carol.ID); n != 2 {
		t.Fatalf("carol has %d notes before, want 2", n)
	}

	if r := do(t, "DELETE", e.URL+"/users/"+itoa(carol.ID), nil, bearer(tok)); r.status != 204 || r.body != "" {
		t.Fatalf("delete = %d %q", r.status, r.body)
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes WHERE owner_id = $1", carol.ID); n != 0 {
		t.Errorf("%d of carol's notes outlived her", n)
	}
	if n := countRows(t, e, "SELECT count(*) FROM user_roles WHERE user_id = $1", carol.ID); n != 0 {
		t.Errorf("%d of carol's role grants outlived her", n)
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes WHERE owner_id = $1", admin.ID); n != 1 {
		t.Errorf("the admin has %d notes left, want 1", n)
	}
	assertProblem(t, do(t, "GET", e.URL+"/users/"+itoa(carol.ID), nil, bearer(tok)), 404)
	if r := login(t, e, carol.Email, carol.Password); r.status != 400 {
		t.Errorf("login of a deleted account = %d", r.status)
	}
}

// listUsers fetches one page of GET /users with the given query.
func listUsers(t *testing.T, e *apitest.Env, tok string, q url.Values) api.UserPage {
	t.Helper()
	r := do(t, "GET", e.URL+"/users?"+q.Encode(), nil, bearer(tok))
	if r.status != 200 {
		t.Fatalf("GET /users?%s = %d %s", q.Encode(), r.status, r.body)
	}
	return decode[api.UserPage](t, r)
}

// walkUsers follows next_cursor from the first page to the last and returns
// the ids in the order they came and the size of each page.
func walkUsers(t *testing.T, e *apitest.Env, tok string, q url.Values) (ids []int64, sizes []int) {
	t.Helper()
	for range 100 {
		page := listUsers(t, e, tok, q)
		sizes = append(sizes, len(page.Items))
		for _, u := range page.Items {
			ids = append(ids, u.Id)
		}
		if page.NextCursor == nil {
			return ids, sizes
		}
		q.Set("cursor", *page.NextCursor)
	}
	t.Fatal("no last page after 100 pages")
	return nil, nil
}

func TestListUsersPages(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	all := []int64{admin.ID}
	var systems []int64
	for i, name := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		roles := []string{"user"}
		if i%2 == 1 {
			roles = append(roles, "system")
		}
		u := e.CreateUser(t, name+"@example.com", roles...)
		all = append(all, u.ID)
		if i%2 == 1 {
			systems = append(systems, u.ID)
		}
	}
	slices.Sort(all)

	tests := []struct {
		name      string
		query     url.Values
		wantIDs   []int64
		wantSizes []int
	}{
		{"three a page", url.Values{"limit": {"3"}}, all, []int{3, 3, 1}},
		{"one a page", url.Values{"limit": {"1"}}, all, []int{1, 1, 1, 1, 1, 1, 1}},
		{"the default page holds all", url.Values{}, all, []int{7}},
		{"a page exactly full", url.Values{"limit": {"7"}}, all, []int{7}},
		{"role filter", url.Values{"role": {"system"}, "limit": {"2"}}, systems, []int{2, 1}},
		{"role filter, one full page", url.Values{"role": {"system"}, "limit": {"3"}}, systems, []int{3}},
		{"a role nobody holds", url.Values{"role": {"unrelated"}}, nil, []int{0}},
		{"a role that does not exist", url.Values{"role": {"nosuchrole"}}, nil, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ids, sizes := walkUsers(t, e, tok, tt.query)
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSizes, sizes); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("items carry sorted roles", func(t *testing.T) {
		t.Parallel()
		page := listUsers(t, e, tok, url.Values{"role": {"system"}, "limit": {"1"}})
		if len(page.Items) != 1 || !slices.Equal(page.Items[0].Roles, []string{"system", "user"}) || page.Items[0].Email != "u2@example.com" {
			t.Errorf("first system user = %+v", page.Items)
		}
		if page.Items[0].Roles == nil || page.NextCursor == nil {
			t.Errorf("page = %+v", page)
		}
	})

	b64 := base64.RawURLEncoding.EncodeToString
	for _, cursor := range []string{"not base64!", b64([]byte("x:1")), b64([]byte("u:")), b64([]byte("u:abc")), b64([]byte("u:0")), b64([]byte("u:-3")), b64([]byte("u:+3")), b64([]byte("u:99999999999999999999")), base64.URLEncoding.EncodeToString([]byte("u:12"))} {
		t.Run("malformed cursor "+cursor, func(t *testing.T) {
			t.Parallel()
			r := do(t, "GET", e.URL+"/users?cursor="+url.QueryEscape(cursor), nil, bearer(tok))
			m := assertProblem(t, r, 400)
			errs, _ := m["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != "query.cursor" {
				t.Errorf("errors = %v, want query.cursor", m["errors"])
			}
		})
	}
}

// PUT /users/{id}/roles replaces the whole set, or changes nothing.
func TestSetUserRoles(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	dave := e.CreateUser(t, "dave@example.com", "user")
	path := e.URL + "/users/" + itoa(dave.ID) + "/roles"
	before := getUser(t, e, tok, dave.ID)

	steps := []struct {
		body      string
		wantRoles []string
	}{
		{`{"roles":["system","admin"]}`, []string{"admin", "system"}},
		{`{"roles":["user"]}`, []string{"user"}},
		{`{"roles":[]}`, []string{}},
		{`{"roles":["unrelated","user","system"]}`, []string{"system", "unrelated", "user"}},
	}
	for _, s := range steps {
		r := do(t, "PUT", path, strings.NewReader(s.body), jsonHeaders(tok))
		if r.status != 200 {
			t.Fatalf("PUT %s = %d %s", s.body, r.status, r.body)
		}
		if got := decode[api.User](t, r); !slices.Equal(got.Roles, s.wantRoles) || got.Roles == nil || !got.UpdatedAt.After(before.UpdatedAt) {
			t.Errorf("PUT %s answered %+v, want roles %v and a later updated_at", s.body, got, s.wantRoles)
		}
		if got := getUser(t, e, tok, dave.ID).Roles; !slices.Equal(got, s.wantRoles) {
			t.Errorf("after PUT %s, GET says roles %v, want %v", s.body, got, s.wantRoles)
		}
	}

	r := do(t, "PUT", path, strings.NewReader(`{"roles":["user","nosuchrole"]}`), jsonHeaders(tok))
	m := assertProblem(t, r, 400)
	if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.roles.1" {
		t.Errorf("errors = %v, want body.roles.1", m["errors"])
	}
	if got := getUser(t, e, tok, dave.ID).Roles; !slices.Equal(got, []string{"system", "unrelated", "user"}) {
		t.Errorf("an unknown role changed the roles to %v", got)
	}

	// Admins may change their own roles as long as they keep admin.
	r = do(t, "PUT", e.URL+"/users/"+itoa(admin.ID)+"/roles", strings.NewReader(`{"roles":["system","admin"]}`), jsonHeaders(tok))
	if r.status != 200 || !slices.Equal(decode[api.User](t, r).Roles, []string{"admin", "system"}) {
		t.Errorf("admin keeping admin = %d %s", r.status, r.body)
	}
}

// Every operation on an account id answers 404 when there is no such account.
func TestUserNotFound(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	const missing = "/users/987654321"
	tests := []struct{ method, path, body string }{
		{"GET", missing, ""},
		{"PUT", missing + "/roles", `{"roles":["user"]}`},
		{"POST", missing + "/disable", ""},
		{"POST", missing + "/enable", ""},
		{"DELETE", missing, ""},
		{"DELETE", "/roles/nosuchrole", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			var r response
			if tt.body != "" {
				r = do(t, tt.method, e.URL+tt.path, strings.NewReader(tt.body), jsonHeaders(tok))
			} else {
				r = do(t, tt.method, e.URL+tt.path, nil, bearer(tok))
			}
			assertProblem(t, r, 404)
		})
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	names := func() []string {
		t.Helper()
		r := do(t, "GET", e.URL+"/roles", nil, bearer(tok))
		if r.status != 200 {
			t.Fatalf("GET /roles = %d %s", r.status, r.body)
		}
		var out []string
		for _, role := range decode[[]api.Role](t, r) {
			if role.CreatedAt.IsZero() {
				t.Errorf("role %s has no created_at", role.Name)
			}
			out = append(out, role.Name)
		}
		return out
	}
	initial := names()
	if !slices.IsSorted(initial) || !slices.Contains(initial, "admin") || !slices.Contains(initial, "user") {
		t.Fatalf("roles = %v, want sorted and holding the spec's", initial)
	}

	r := do(t, "POST", e.URL+"/roles", strings.NewReader(`{"name":"auditor"}`), jsonHeaders(tok))
	if r.status != 201 || decode[api.Role](t, r).Name != "auditor" {
		t.Fatalf("create role = %d %s", r.status, r.body)
	}
	assertProblem(t, do(t, "POST", e.URL+"/roles", strings.NewReader(`{"name":"auditor"}`), jsonHeaders(tok)), 409)
	assertProblem(t, do(t, "POST", e.URL+"/roles", strings.NewReader(`{"name":"Not A Name"}`), jsonHeaders(tok)), 400)
	if got, want := names(), slices.Sorted(slices.Values(append(slices.Clone(initial), "auditor"))); !slices.Equal(got, want) {
		t.Errorf("roles after create = %v, want %v", got, want)
	}

	erin := e.CreateUser(t, "erin@example.com", "user", "auditor")
	if r := do(t, "DELETE", e.URL+"/roles/auditor", nil, bearer(tok)); r.status != 204 {
		t.Fatalf("delete role = %d %s", r.status, r.body)
	}
	if got := getUser(t, e, tok, erin.ID).Roles; !slices.Equal(got, []string{"user"}) {
		t.Errorf("erin's roles after deleting auditor = %v", got)
	}
	if got := names(); !slices.Equal(got, initial) {
		t.Errorf("roles after delete = %v, want %v", got, initial)
	}
	assertProblem(t, do(t, "DELETE", e.URL+"/roles/auditor", nil, bearer(tok)), 404)
}

func TestChangeMyPassword(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	frank := e.CreateUser(t, "frank@example.com", "user")
	tok := e.Token(t, frank)
	change := func(current, next string) response {
		t.Helper()
		b, _ := json.Marshal(api.PasswordChange{CurrentPassword: current, NewPassword: next})
		return do(t, "POST", e.URL+"/identify/me/password", strings.NewReader(string(b)), jsonHeaders(tok))
	}
	const next = "a brand new passphrase"

	m := assertProblem(t, change("not my password", next), 400)
	if errs, _ := m["errors"].([]any); m["detail"] != "The current password is incorrect." || len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.current_password" {
		t.Errorf("wrong current password = %v", m)
	}
	m = assertProblem(t, change(frank.Password, "short"), 400)
	if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.new_password" {
		t.Errorf("short new password = %v", m)
	}
	if r := login(t, e, frank.Email, frank.Password); r.status != 200 {
		t.Fatalf("refused changes broke the old password: %d %s", r.status, r.body)
	}

	if r := change(frank.Password, next); r.status != 204 || r.body != "" {
		t.Fatalf("change = %d %q", r.status, r.body)
	}
	if r := login(t, e, frank.Email, frank.Password); r.status != 400 {
		t.Errorf("old password after the change = %d, want 400", r.status)
	}
	if r := login(t, e, frank.Email, next); r.status != 200 {
		t.Errorf("new password = %d %s", r.status, r.body)
	}
	var hash string
	if err := e.Pool.QueryRow(context.Background(), "SELECT password_hash FROM users WHERE id = $1", frank.ID).Scan(&hash); err != nil || !strings.HasPrefix(hash, "$argon2id$") {
		t.Errorf("stored hash %.10s… (err %v), want argon2id", hash, err)
	}
}

// The users tag admits only admins, whatever else the caller holds.
func TestUserAdministrationNeedsAdmin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "plain@example.com", "user", "system")
	tok := e.Token(t, u)
	self := "/users/" + itoa(u.ID)
	tests := []struct{ method, path, body string }{
		{"GET", "/users", ""},
		{"POST", "/users", `{"email":"x@example.com","password":"long enough password","roles":["admin"]}`},
		{"GET", self, ""},
		{"PUT", self + "/roles", `{"roles":["admin"]}`},
		{"POST", self + "/disable", ""},
		{"POST", self + "/enable", ""},
		{"DELETE", self, ""},
		{"GET", "/roles", ""},
		{"POST", "/roles", `{"name":"mine"}`},
		{"DELETE", "/roles/system", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			var r response
			if tt.body != "" {
				r = do(t, tt.method, e.URL+tt.path, strings.NewReader(tt.body), jsonHeaders(tok))
			} else {
				r = do(t, tt.method, e.URL+tt.path, nil, bearer(tok))
			}
			assertProblem(t, r, 403)
		})
	}
	t.Cleanup(func() {
		if got := getUser(t, e, e.Token(t, apitest.User{ID: u.ID, Email: u.Email, Roles: []string{"admin"}}), u.ID).Roles; !slices.Equal(got, []string{"system", "user"}) {
			t.Errorf("roles after refused requests = %v", got)
		}
	})
}
