package handlers_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/sdk"
)

// answer is what a test looks at in a response of the generated client that
// should be a problem: the HTTP response, its body and the typed problem the
// client parsed it into (nil when it was something else).
type answer struct {
	http    *http.Response
	body    []byte
	problem *api.Problem
}

// assertSDKProblem checks an RFC 9457 body with the given status, received
// through the SDK, and returns the typed problem.
func assertSDKProblem(t *testing.T, a answer, status int) *api.Problem {
	t.Helper()
	if a.http == nil || a.http.StatusCode != status || a.http.Header.Get("Content-Type") != "application/problem+json" || a.problem == nil {
		var got int
		var ct string
		if a.http != nil {
			got, ct = a.http.StatusCode, a.http.Header.Get("Content-Type")
		}
		t.Fatalf("got %d %s %s, want %d application/problem+json", got, ct, a.body, status)
	}
	p := a.problem
	if p.Status != status || p.Title == "" || p.Type != "about:blank" || p.RequestId == nil || *p.RequestId == "" {
		t.Errorf("problem body %s lacks status/title/type/request_id", a.body)
	}
	return p
}

// errorFields lists the fields a problem names.
func errorFields(p *api.Problem) []string {
	if p == nil || p.Errors == nil {
		return nil
	}
	var out []string
	for _, fe := range *p.Errors {
		out = append(out, fe.Field)
	}
	return out
}

// must fails the test on an error of the SDK itself (transport, decoding).
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sdkLogin logs in through /token with the Go SDK and returns the refusal,
// if any.
func sdkLogin(t *testing.T, e *apitest.Env, email, pw string) error {
	t.Helper()
	_, err := sdk.Token(context.Background(), e.URL, email, pw, api.WithHTTPClient(apitest.HTTPClient(t)))
	return err
}

// assertInvalidGrant checks that a login was refused with RFC 6749's 400
// invalid_grant.
func assertInvalidGrant(t *testing.T, err error, what string) {
	t.Helper()
	var le *sdk.LoginError
	if !errors.As(err, &le) || le.Status != 400 || le.Code != "invalid_grant" {
		t.Errorf("%s: %v, want a 400 invalid_grant refusal", what, err)
	}
}

// adminEnv starts a server with one admin and returns the admin's token.
func adminEnv(t *testing.T) (*apitest.Env, apitest.User, string) {
	t.Helper()
	e := apitest.New(t)
	admin := e.CreateUser(t, "root@example.com", "admin", "user")
	return e, admin, e.Token(t, admin)
}

// getUser fetches an account through the API and fails unless it exists.
func getUser(t *testing.T, c *api.ClientWithResponses, id int64) api.User {
	t.Helper()
	r, err := c.GetUserWithResponse(context.Background(), id)
	must(t, err)
	if r.JSON200 == nil {
		t.Fatalf("GET /users/%d = %d %s", id, r.StatusCode(), r.Body)
	}
	return *r.JSON200
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
	ctx := context.Background()
	e.CreateUser(t, "taken@example.com", "user")
	tests := []struct {
		name       string
		call       func(*testing.T, *api.ClientWithResponses) answer
		wantDetail string
	}{
		{"duplicate email in another case", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.CreateUserWithResponse(ctx, api.CreateUserJSONRequestBody{Email: "TAKEN@Example.com", Password: "long enough password", Roles: []string{"user"}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "An account with this email exists."},
		{"remove own admin role", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.SetUserRolesWithResponse(ctx, admin.ID, api.SetUserRolesJSONRequestBody{Roles: []string{"user"}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "You cannot remove your own admin role."},
		{"remove all own roles", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.SetUserRolesWithResponse(ctx, admin.ID, api.SetUserRolesJSONRequestBody{Roles: []string{}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "You cannot remove your own admin role."},
		{"disable self", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DisableUserWithResponse(ctx, admin.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "You cannot disable your own account."},
		{"delete self", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteUserWithResponse(ctx, admin.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "You cannot delete your own account."},
		{"delete a spec role", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteRoleWithResponse(ctx, "user")
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "The API spec names this role."},
		{"delete the admin role", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteRoleWithResponse(ctx, "admin")
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, "The API spec names this role."},
		{"create an existing role", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.CreateRoleWithResponse(ctx, api.CreateRoleJSONRequestBody{Name: "system"})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tt.call(t, e.Client(t, tok))
			p := assertSDKProblem(t, a, 409)
			if tt.wantDetail != "" && (p.Detail == nil || *p.Detail != tt.wantDetail) {
				t.Errorf("detail of %s, want %q", a.body, tt.wantDetail)
			}
		})
	}
	t.Cleanup(func() {
		got := getUser(t, e.Client(t, tok), admin.ID)
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
	ctx := context.Background()
	c := e.Client(t, tok)
	r, err := c.CreateUserWithResponse(ctx, api.CreateUserJSONRequestBody{Email: "New@Example.com", Password: "a long enough password", Roles: []string{"user", "system"}})
	must(t, err)
	if r.JSON201 == nil {
		t.Fatalf("create = %d %s", r.StatusCode(), r.Body)
	}
	created := *r.JSON201
	if got, want := r.HTTPResponse.Header.Get("Location"), "/users/"+itoa(created.Id); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if created.Email != "New@Example.com" || created.Disabled || !slices.Equal(created.Roles, []string{"system", "user"}) {
		t.Errorf("created = %+v", created)
	}
	if diff := cmp.Diff(created, getUser(t, c, created.Id)); diff != "" {
		t.Errorf("GET after create (-created +got):\n%s", diff)
	}
	if err := sdkLogin(t, e, "new@example.com", "a long enough password"); err != nil {
		t.Errorf("login as the new account: %v", err)
	}

	// A body the spec allows goes through the SDK; one the spec forbids
	// cannot (the SDK's Email type refuses to marshal a non-address, and the
	// validated client fails the test on a request that breaks the spec), so
	// it is sent raw.
	bad := []struct {
		name string
		body api.CreateUserJSONRequestBody
		raw  string
	}{
		{name: "unknown role", body: api.CreateUserJSONRequestBody{Email: "ghost@example.com", Password: "a long enough password", Roles: []string{"user", "nosuchrole"}}},
		{name: "short password", raw: `{"email":"ghost@example.com","password":"short","roles":[]}`},
		{name: "not an email", raw: `{"email":"ghost","password":"a long enough password","roles":[]}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if tt.raw != "" {
				assertProblem(t, do(t, "POST", e.URL+"/users", strings.NewReader(tt.raw), jsonHeaders(tok)), 400)
				return
			}
			r, err := e.Client(t, tok).CreateUserWithResponse(ctx, tt.body)
			must(t, err)
			assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON400}, 400)
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
	ctx := context.Background()
	c := e.Client(t, tok)
	bob := e.CreateUser(t, "bob@example.com", "user")
	before := getUser(t, c, bob.ID)
	if err := sdkLogin(t, e, bob.Email, bob.Password); err != nil {
		t.Fatalf("login before disabling: %v", err)
	}

	r, err := c.DisableUserWithResponse(ctx, bob.ID)
	must(t, err)
	if r.JSON200 == nil {
		t.Fatalf("disable = %d %s", r.StatusCode(), r.Body)
	}
	disabled := *r.JSON200
	if !disabled.Disabled || !disabled.UpdatedAt.After(before.UpdatedAt) || !slices.Equal(disabled.Roles, []string{"user"}) {
		t.Errorf("disabled = %+v, want disabled with a later updated_at than %v", disabled, before.UpdatedAt)
	}
	assertInvalidGrant(t, sdkLogin(t, e, bob.Email, bob.Password), "login while disabled")
	// Disabling again changes nothing.
	r, err = c.DisableUserWithResponse(ctx, bob.ID)
	must(t, err)
	if r.JSON200 == nil || !r.JSON200.UpdatedAt.Equal(disabled.UpdatedAt) {
		t.Errorf("disabling twice = %d %s, want 200 and updated_at unchanged", r.StatusCode(), r.Body)
	}

	en, err := c.EnableUserWithResponse(ctx, bob.ID)
	must(t, err)
	if en.JSON200 == nil || en.JSON200.Disabled {
		t.Fatalf("enable = %d %s", en.StatusCode(), en.Body)
	}
	if err := sdkLogin(t, e, bob.Email, bob.Password); err != nil {
		t.Errorf("login after enabling: %v", err)
	}
}

// Deleting an account deletes its notes and roles, and nobody else's.
func TestDeleteUserRemovesTheirNotes(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	ctx := context.Background()
	c := e.Client(t, tok)
	carol := e.CreateUser(t, "carol@example.com", "user")
	for _, u := range []apitest.User{carol, carol, admin} {
		r, err := e.Client(t, e.Token(t, u)).CreateNoteWithResponse(ctx, api.CreateNoteJSONRequestBody{DocumentSrc: "d.pdf", Title: "t", Body: "b"})
		must(t, err)
		if r.JSON201 == nil {
			t.Fatalf("create note = %d %s", r.StatusCode(), r.Body)
		}
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes WHERE owner_id = $1", carol.ID); n != 2 {
		t.Fatalf("carol has %d notes before, want 2", n)
	}

	d, err := c.DeleteUserWithResponse(ctx, carol.ID)
	must(t, err)
	if d.StatusCode() != 204 || len(d.Body) != 0 {
		t.Fatalf("delete = %d %q", d.StatusCode(), d.Body)
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
	g, err := c.GetUserWithResponse(ctx, carol.ID)
	must(t, err)
	assertSDKProblem(t, answer{g.HTTPResponse, g.Body, g.ApplicationproblemJSON404}, 404)
	assertInvalidGrant(t, sdkLogin(t, e, carol.Email, carol.Password), "login of a deleted account")
}

// listUsers fetches one page of GET /users with the given parameters.
func listUsers(t *testing.T, c *api.ClientWithResponses, params api.ListUsersParams) api.UserPage {
	t.Helper()
	r, err := c.ListUsersWithResponse(context.Background(), &params)
	must(t, err)
	if r.JSON200 == nil {
		t.Fatalf("GET /users %+v = %d %s", params, r.StatusCode(), r.Body)
	}
	return *r.JSON200
}

// walkUsers follows next_cursor from the first page to the last and returns
// the ids in the order they came and the size of each page.
func walkUsers(t *testing.T, c *api.ClientWithResponses, params api.ListUsersParams) (ids []int64, sizes []int) {
	t.Helper()
	for range 100 {
		page := listUsers(t, c, params)
		sizes = append(sizes, len(page.Items))
		for _, u := range page.Items {
			ids = append(ids, u.Id)
		}
		if page.NextCursor == nil {
			return ids, sizes
		}
		params.Cursor = page.NextCursor
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
		params    api.ListUsersParams
		wantIDs   []int64
		wantSizes []int
	}{
		{"three a page", api.ListUsersParams{Limit: ptr(3)}, all, []int{3, 3, 1}},
		{"one a page", api.ListUsersParams{Limit: ptr(1)}, all, []int{1, 1, 1, 1, 1, 1, 1}},
		{"the default page holds all", api.ListUsersParams{}, all, []int{7}},
		{"a page exactly full", api.ListUsersParams{Limit: ptr(7)}, all, []int{7}},
		{"role filter", api.ListUsersParams{Role: ptr("system"), Limit: ptr(2)}, systems, []int{2, 1}},
		{"role filter, one full page", api.ListUsersParams{Role: ptr("system"), Limit: ptr(3)}, systems, []int{3}},
		{"a role nobody holds", api.ListUsersParams{Role: ptr("unrelated")}, nil, []int{0}},
		{"a role that does not exist", api.ListUsersParams{Role: ptr("nosuchrole")}, nil, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ids, sizes := walkUsers(t, e.Client(t, tok), tt.params)
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
		page := listUsers(t, e.Client(t, tok), api.ListUsersParams{Role: ptr("system"), Limit: ptr(1)})
		if len(page.Items) != 1 || !slices.Equal(page.Items[0].Roles, []string{"system", "user"}) || page.Items[0].Email != "u2@example.com" {
			t.Errorf("first system user = %+v", page.Items)
		}
		if page.Items[0].Roles == nil || page.NextCursor == nil {
			t.Errorf("page = %+v", page)
		}
	})

	b64 := base64.RawURLEncoding.EncodeToString
	for _, cursor := range []string{"not base64!", b64([]byte("x0.1")), b64([]byte("k0.")), b64([]byte("k0.abc")), b64([]byte("k0.0")), b64([]byte("k0.-3")), b64([]byte("k0.+3")), b64([]byte("k00.3")), b64([]byte("k0.99999999999999999999")), base64.URLEncoding.EncodeToString([]byte("k0.12"))} {
		t.Run("malformed cursor "+cursor, func(t *testing.T) {
			t.Parallel()
			r, err := e.Client(t, tok).ListUsersWithResponse(context.Background(), &api.ListUsersParams{Cursor: &cursor})
			must(t, err)
			p := assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON400}, 400)
			if got, want := errorFields(p), []string{"query.cursor"}; !slices.Equal(got, want) {
				t.Errorf("error fields = %v, want %v", got, want)
			}
		})
	}
}

// PUT /users/{id}/roles replaces the whole set, or changes nothing.
func TestSetUserRoles(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	ctx := context.Background()
	c := e.Client(t, tok)
	dave := e.CreateUser(t, "dave@example.com", "user")
	before := getUser(t, c, dave.ID)

	steps := []struct {
		roles     []string
		wantRoles []string
	}{
		{[]string{"system", "admin"}, []string{"admin", "system"}},
		{[]string{"user"}, []string{"user"}},
		{[]string{}, []string{}},
		{[]string{"unrelated", "user", "system"}, []string{"system", "unrelated", "user"}},
	}
	for _, s := range steps {
		r, err := c.SetUserRolesWithResponse(ctx, dave.ID, api.SetUserRolesJSONRequestBody{Roles: s.roles})
		must(t, err)
		if r.JSON200 == nil {
			t.Fatalf("PUT %v = %d %s", s.roles, r.StatusCode(), r.Body)
		}
		if got := *r.JSON200; !slices.Equal(got.Roles, s.wantRoles) || got.Roles == nil || !got.UpdatedAt.After(before.UpdatedAt) {
			t.Errorf("PUT %v answered %+v, want roles %v and a later updated_at", s.roles, got, s.wantRoles)
		}
		if got := getUser(t, c, dave.ID).Roles; !slices.Equal(got, s.wantRoles) {
			t.Errorf("after PUT %v, GET says roles %v, want %v", s.roles, got, s.wantRoles)
		}
	}

	r, err := c.SetUserRolesWithResponse(ctx, dave.ID, api.SetUserRolesJSONRequestBody{Roles: []string{"user", "nosuchrole"}})
	must(t, err)
	p := assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON400}, 400)
	if got, want := errorFields(p), []string{"body.roles.1"}; !slices.Equal(got, want) {
		t.Errorf("error fields = %v, want %v", got, want)
	}
	if got := getUser(t, c, dave.ID).Roles; !slices.Equal(got, []string{"system", "unrelated", "user"}) {
		t.Errorf("an unknown role changed the roles to %v", got)
	}

	// Admins may change their own roles as long as they keep admin.
	r, err = c.SetUserRolesWithResponse(ctx, admin.ID, api.SetUserRolesJSONRequestBody{Roles: []string{"system", "admin"}})
	must(t, err)
	if r.JSON200 == nil || !slices.Equal(r.JSON200.Roles, []string{"admin", "system"}) {
		t.Errorf("admin keeping admin = %d %s", r.StatusCode(), r.Body)
	}
}

// Every operation on an account id answers 404 when there is no such account.
func TestUserNotFound(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	ctx := context.Background()
	const missing = 987654321
	tests := []struct {
		name string
		call func(*testing.T, *api.ClientWithResponses) answer
	}{
		{"GET /users/{missing}", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.GetUserWithResponse(ctx, missing)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
		{"PUT /users/{missing}/roles", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.SetUserRolesWithResponse(ctx, missing, api.SetUserRolesJSONRequestBody{Roles: []string{"user"}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
		{"POST /users/{missing}/disable", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DisableUserWithResponse(ctx, missing)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
		{"POST /users/{missing}/enable", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.EnableUserWithResponse(ctx, missing)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
		{"DELETE /users/{missing}", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteUserWithResponse(ctx, missing)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
		{"DELETE /roles/nosuchrole", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteRoleWithResponse(ctx, "nosuchrole")
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON404}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertSDKProblem(t, tt.call(t, e.Client(t, tok)), 404)
		})
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	ctx := context.Background()
	c := e.Client(t, tok)
	names := func() []string {
		t.Helper()
		r, err := c.ListRolesWithResponse(ctx)
		must(t, err)
		if r.JSON200 == nil {
			t.Fatalf("GET /roles = %d %s", r.StatusCode(), r.Body)
		}
		var out []string
		for _, role := range *r.JSON200 {
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

	cr, err := c.CreateRoleWithResponse(ctx, api.CreateRoleJSONRequestBody{Name: "auditor"})
	must(t, err)
	if cr.JSON201 == nil || cr.JSON201.Name != "auditor" {
		t.Fatalf("create role = %d %s", cr.StatusCode(), cr.Body)
	}
	cr, err = c.CreateRoleWithResponse(ctx, api.CreateRoleJSONRequestBody{Name: "auditor"})
	must(t, err)
	assertSDKProblem(t, answer{cr.HTTPResponse, cr.Body, cr.ApplicationproblemJSON409}, 409)
	// A name the spec's pattern forbids: the validated client cannot send it.
	assertProblem(t, do(t, "POST", e.URL+"/roles", strings.NewReader(`{"name":"Not A Name"}`), jsonHeaders(tok)), 400)
	if got, want := names(), slices.Sorted(slices.Values(append(slices.Clone(initial), "auditor"))); !slices.Equal(got, want) {
		t.Errorf("roles after create = %v, want %v", got, want)
	}

	erin := e.CreateUser(t, "erin@example.com", "user", "auditor")
	d, err := c.DeleteRoleWithResponse(ctx, "auditor")
	must(t, err)
	if d.StatusCode() != 204 {
		t.Fatalf("delete role = %d %s", d.StatusCode(), d.Body)
	}
	if got := getUser(t, c, erin.ID).Roles; !slices.Equal(got, []string{"user"}) {
		t.Errorf("erin's roles after deleting auditor = %v", got)
	}
	if got := names(); !slices.Equal(got, initial) {
		t.Errorf("roles after delete = %v, want %v", got, initial)
	}
	d, err = c.DeleteRoleWithResponse(ctx, "auditor")
	must(t, err)
	assertSDKProblem(t, answer{d.HTTPResponse, d.Body, d.ApplicationproblemJSON404}, 404)
}

// The users tag admits only admins, whatever else the caller holds.
func TestUserAdministrationNeedsAdmin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	u := e.CreateUser(t, "plain@example.com", "user", "system")
	tok := e.Token(t, u)
	tests := []struct {
		name string
		call func(*testing.T, *api.ClientWithResponses) answer
	}{
		{"GET /users", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.ListUsersWithResponse(ctx, nil)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"POST /users", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.CreateUserWithResponse(ctx, api.CreateUserJSONRequestBody{Email: "x@example.com", Password: "long enough password", Roles: []string{"admin"}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"GET /users/{self}", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.GetUserWithResponse(ctx, u.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"PUT /users/{self}/roles", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.SetUserRolesWithResponse(ctx, u.ID, api.SetUserRolesJSONRequestBody{Roles: []string{"admin"}})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"POST /users/{self}/disable", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DisableUserWithResponse(ctx, u.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"POST /users/{self}/enable", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.EnableUserWithResponse(ctx, u.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"DELETE /users/{self}", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteUserWithResponse(ctx, u.ID)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"GET /roles", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.ListRolesWithResponse(ctx)
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"POST /roles", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.CreateRoleWithResponse(ctx, api.CreateRoleJSONRequestBody{Name: "mine"})
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
		{"DELETE /roles/system", func(t *testing.T, c *api.ClientWithResponses) answer {
			r, err := c.DeleteRoleWithResponse(ctx, "system")
			must(t, err)
			return answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON403}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertSDKProblem(t, tt.call(t, e.Client(t, tok)), 403)
		})
	}
	t.Cleanup(func() {
		asAdmin := e.Client(t, e.Token(t, e.CreateUser(t, "checker@example.com", "admin")))
		if got := getUser(t, asAdmin, u.ID).Roles; !slices.Equal(got, []string{"system", "user"}) {
			t.Errorf("roles after refused requests = %v", got)
		}
	})
}

// assertTokenRefused checks the 401 of a token that verifies but that its
// account no longer backs.
func assertTokenRefused(t *testing.T, r response) {
	t.Helper()
	assertProblem(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", got)
	}
}

// call is one request of an admin test; {alice} and {bob} in path stand
// for those accounts' ids.
type call struct{ method, path, body string }

func (c call) do(t *testing.T, e *apitest.Env, tok string, alice, bob apitest.User) response {
	t.Helper()
	path := strings.NewReplacer("{alice}", strconv.FormatInt(alice.ID, 10), "{bob}", strconv.FormatInt(bob.ID, 10)).Replace(c.path)
	return do(t, c.method, e.URL+path, strings.NewReader(c.body), jsonHeaders(tok))
}

var (
	disableBob = call{"POST", "/users/{bob}/disable", ""}
	demoteBob  = call{"PUT", "/users/{bob}/roles", `{"roles":["user"]}`}
	deleteBob  = call{"DELETE", "/users/{bob}", ""}
)

// An admin removed from office keeps a token that still says admin until it
// expires; account administration checks the account again, in the
// transaction of the change, so that token can neither undo the removal nor
// do anything else there.
func TestRemovedAdminIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remove call // what alice does to bob
		try    call // what bob then tries with the token he had
		// intact counts rows, $1 being bob's id and $2 alice's, and must be
		// 1 afterwards: the attempt changed nothing.
		intact string
	}{
		{"disabled admin enables himself", disableBob, call{"POST", "/users/{bob}/enable", ""},
			"SELECT count(*) FROM users WHERE id = $1 AND disabled AND $2 > 0"},
		{"demoted admin gives himself admin again", demoteBob, call{"PUT", "/users/{bob}/roles", `{"roles":["admin","user"]}`},
			"SELECT count(*) FROM users u WHERE id = $1 AND $2 > 0 AND NOT EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = u.id AND r.name = 'admin')"},
		{"deleted admin creates a new admin", deleteBob, call{"POST", "/users", `{"email":"sleeper@example.com","password":"a long enough password","roles":["admin"]}`},
			"SELECT count(*) FROM users WHERE id <> $1 AND id = $2"},
		{"demoted admin disables the other admin", demoteBob, call{"POST", "/users/{alice}/disable", ""},
			"SELECT count(*) FROM users WHERE id = $2 AND NOT disabled AND $1 > 0"},
		{"disabled admin deletes the other admin", disableBob, call{"DELETE", "/users/{alice}", ""},
			"SELECT count(*) FROM users WHERE id = $2 AND $1 > 0"},
		{"demoted admin creates a role", demoteBob, call{"POST", "/roles", `{"name":"backdoor"}`},
			"SELECT 1 - count(*) FROM roles WHERE name = 'backdoor' AND $1 > 0 AND $2 > 0"},
		{"disabled admin lists the accounts", disableBob, call{"GET", "/users", ""},
			"SELECT 1 WHERE $1 > 0 AND $2 > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t)
			alice := e.CreateUser(t, "alice@example.com", "admin", "user")
			bob := e.CreateUser(t, "bob@example.com", "admin", "user")
			bobTok := e.Token(t, bob) // issued while bob is an admin
			if r := tt.remove.do(t, e, e.Token(t, alice), alice, bob); r.status >= 300 {
				t.Fatalf("alice removing bob: %d %s", r.status, r.body)
			}
			assertTokenRefused(t, tt.try.do(t, e, bobTok, alice, bob))
			if n := countRows(t, e, tt.intact, bob.ID, alice.ID); n != 1 {
				t.Errorf("after the refused request: %s = %d, want 1", tt.intact, n)
			}
			if n := countRows(t, e, "SELECT count(*) FROM users WHERE email = 'sleeper@example.com'"); n != 0 {
				t.Errorf("the removed admin created an account")
			}
		})
	}
}

// An admin cannot enable their own account either: an admin whose token
// outlived their disabling must not be able to undo it.
func TestAdminCannotEnableThemselves(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	m := assertProblem(t, do(t, "POST", e.URL+"/users/"+strconv.FormatInt(admin.ID, 10)+"/enable", nil, bearer(tok)), http.StatusConflict)
	if m["detail"] != "You cannot enable your own account." {
		t.Errorf("detail = %v", m["detail"])
	}
}

// Two admins removing each other at the same moment, in every combination
// of demoting, disabling and deleting, never leave zero enabled admins:
// exactly one of the two wins, and the other's token is refused.
func TestConcurrentAdminRemovalsLeaveAnAdmin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	const rounds = 8
	removals := map[string]call{"demote": demoteBob, "disable": disableBob, "delete": deleteBob}
	for aName, aCall := range removals {
		for bName, bCall := range removals {
			for round := range rounds {
				// The admin set is exactly these two, so that a lost race
				// would show as no admin at all.
				if _, err := e.Pool.Exec(ctx, "DELETE FROM users"); err != nil {
					t.Fatal(err)
				}
				alice := e.CreateUser(t, "alice@example.com", "admin", "user")
				bob := e.CreateUser(t, "bob@example.com", "admin", "user")
				aliceTok, bobTok := e.Token(t, alice), e.Token(t, bob)
				// Each removes the other: bob's call is aCall with the names
				// swapped, so the same table serves both directions.
				var wg sync.WaitGroup
				start := make(chan struct{})
				statuses := make([]int, 2)
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					statuses[0] = aCall.do(t, e, aliceTok, alice, bob).status
				}()
				go func() {
					defer wg.Done()
					<-start
					statuses[1] = bCall.do(t, e, bobTok, bob, alice).status
				}()
				close(start)
				wg.Wait()

				admins := countRows(t, e, `SELECT count(*) FROM users u WHERE NOT disabled AND EXISTS (
					SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = u.id AND r.name = 'admin')`)
				won := 0
				for _, s := range statuses {
					if s < 300 {
						won++
					} else if s != http.StatusUnauthorized {
						t.Errorf("%s vs %s, round %d: a loser got %d, want 401", aName, bName, round, s)
					}
				}
				if admins != 1 || won != 1 {
					t.Fatalf("alice %ss bob while bob %ss alice, round %d: statuses %v, %d enabled admins left; want one winner and one admin",
						aName, bName, round, statuses, admins)
				}
			}
		}
	}
}

// The busy answer of the hashing pool names no login on an operation that
// is not one.
func TestBusyHashingOnCreateUser(t *testing.T) {
	t.Parallel()
	slow := password.Params{Memory: 64 * 1024, Time: 4, Threads: 1, SaltLen: 16, KeyLen: 32}
	e := apitest.New(t, apitest.Options{HashWorkers: 1, HashQueue: 1, HashParams: &slow})
	admin := e.CreateUser(t, "busyadmin@example.com", "admin")
	tok := e.Token(t, admin)
	const n = 12
	rs := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			rs[i] = do(t, "POST", e.URL+"/users", strings.NewReader(`{"email":"u`+itoa(int64(i))+`@example.com","password":"a long enough password","roles":[]}`), jsonHeaders(tok))
		})
	}
	close(start)
	wg.Wait()
	busy := slices.IndexFunc(rs, func(r response) bool { return r.status == 503 })
	if busy < 0 {
		t.Fatal("no request was shed")
	}
	m := assertProblem(t, rs[busy], 503)
	if d, _ := m["detail"].(string); strings.Contains(strings.ToLower(d), "login") || rs[busy].header.Get("Retry-After") == "" {
		t.Errorf("busy answer on POST /users: %v, Retry-After %q", d, rs[busy].header.Get("Retry-After"))
	}
}

// GET /users?role= lists exactly the holders of the role, in id order,
// across pages of every size, whatever other roles they and the accounts
// between them hold; disabled holders included.
func TestListUsersByRole(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	holders := map[string][]int64{}
	for _, r := range admin.Roles {
		holders[r] = append(holders[r], admin.ID)
	}
	for i := range 14 {
		var roles []string
		switch {
		case i%5 == 0:
			roles = []string{"admin", "user"}
		case i%3 == 0:
			roles = []string{"system"}
		case i%4 == 1:
			roles = nil
		default:
			roles = []string{"user"}
		}
		u := e.CreateUser(t, "holder"+strconv.Itoa(i)+"@example.com", roles...)
		for _, r := range roles {
			holders[r] = append(holders[r], u.ID)
		}
		if i == 10 {
			if _, err := e.Pool.Exec(context.Background(), "UPDATE users SET disabled = true WHERE id = $1", u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := e.Client(t, tok)
	for _, role := range []string{"admin", "user", "system"} {
		want := holders[role]
		slices.Sort(want)
		for _, limit := range []int{1, 2, 3, 50} {
			t.Run(role+" by "+strconv.Itoa(limit), func(t *testing.T) {
				t.Parallel()
				ids, sizes := walkUsers(t, c, api.ListUsersParams{Role: ptr(role), Limit: ptr(limit)})
				if diff := cmp.Diff(want, ids); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if n := (len(want) + limit - 1) / limit; len(sizes) != max(n, 1) {
					t.Errorf("%d pages for %d holders by %d: %v", len(sizes), len(want), limit, sizes)
				}
			})
		}
	}
	t.Run("each holder with all its roles", func(t *testing.T) {
		t.Parallel()
		for _, u := range listUsers(t, c, api.ListUsersParams{Role: ptr("admin")}).Items {
			if got := getUser(t, c, u.Id); !slices.Equal(got.Roles, u.Roles) || got.Disabled != u.Disabled || got.Email != u.Email {
				t.Errorf("listed %+v, GET /users/%d %+v", u, u.Id, got)
			}
		}
	})
}

// Admin reads check the caller's account, not only its token, as changes
// do: an admin disabled, demoted or deleted (here behind the revocation
// feed's back, so that only that check stands) is refused with 401
// invalid_token. They take no lock: a transaction holding the admin role,
// as every change does, keeps none of them waiting.
func TestAdminReadsCheckTheAccount(t *testing.T) {
	t.Parallel()
	reads := []string{
		"/users", "/users?role=admin", "/users/{alice}", "/roles",
		"/audit-events", "/audit-events?type=user.created", "/audit-events?user_id={alice}",
		"/clients", "/clients/{client}",
	}
	setup := func(t *testing.T) (e *apitest.Env, alice, bob apitest.User, path func(string) string) {
		e = apitest.New(t)
		alice = e.CreateUser(t, "alice@example.com", "admin", "user")
		bob = e.CreateUser(t, "bob@example.com", "admin", "user")
		cl := createClient(t, e, e.Token(t, alice), `{"name":"read me","roles":["system"]}`)
		path = func(p string) string {
			return e.URL + strings.NewReplacer("{alice}", strconv.FormatInt(alice.ID, 10), "{client}", cl.id).Replace(p)
		}
		return e, alice, bob, path
	}
	for _, remove := range []struct{ name, sql string }{
		{"disabled", "UPDATE users SET disabled = true WHERE id = $1"},
		{"demoted", "DELETE FROM user_roles WHERE user_id = $1 AND role_id = (SELECT id FROM roles WHERE name = 'admin')"},
		{"deleted", "DELETE FROM users WHERE id = $1"},
	} {
		t.Run(remove.name, func(t *testing.T) {
			t.Parallel()
			e, alice, bob, path := setup(t)
			bobTok := e.Token(t, bob)
			for _, p := range reads {
				if r := do(t, "GET", path(p), nil, bearer(bobTok)); r.status != 200 {
					t.Fatalf("GET %s by an admin = %d %s", p, r.status, r.body)
				}
			}
			if _, err := e.Pool.Exec(context.Background(), remove.sql, bob.ID); err != nil {
				t.Fatal(err)
			}
			for _, p := range reads {
				assertTokenRefused(t, do(t, "GET", path(p), nil, bearer(bobTok)))
			}
			if r := do(t, "GET", path("/users"), nil, bearer(e.Token(t, alice))); r.status != 200 {
				t.Errorf("GET /users by the remaining admin = %d %s", r.status, r.body)
			}
		})
	}
	t.Run("no lock", func(t *testing.T) {
		t.Parallel()
		e, alice, _, path := setup(t)
		ctx := context.Background()
		tx, err := e.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT 1 FROM roles WHERE name = 'admin' FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		tok := e.Token(t, alice)
		for _, p := range reads {
			if r := do(t, "GET", path(p), nil, bearer(tok)); r.status != 200 {
				t.Errorf("GET %s while the admin role is locked = %d %s", p, r.status, r.body)
			}
		}
		// A change waits for the lock, and past the database timeout is 503.
		r := do(t, "POST", path("/roles"), strings.NewReader(`{"name":"waits"}`), jsonHeaders(tok))
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("POST /roles while the admin role is locked = %d %s, want 503", r.status, r.body)
		}
	})
}
