package handlers_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// samplePath fills a path template with values its parameters accept.
func samplePath(doc *openapi3.T, path, method string) string {
	item := doc.Paths.Value(path)
	op := item.GetOperation(method)
	for _, p := range append(item.Parameters, op.Parameters...) {
		if p.Value.In != openapi3.ParameterInPath {
			continue
		}
		v := "sample"
		if s := p.Value.Schema; s != nil && s.Value != nil && s.Value.Type.Is(openapi3.TypeInteger) {
			v = "1"
		}
		path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", v)
	}
	return path
}

// streams reports whether the operation answers 200 with a stream of
// server-sent events, which does not end by itself.
func streams(doc *openapi3.T, path, method string) bool {
	ok := doc.Paths.Value(path).GetOperation(method).Responses.Status(200)
	return ok != nil && ok.Value != nil && ok.Value.Content.Get("text/event-stream") != nil
}

// status sends a request and returns its status and headers, leaving the
// body unread: a stream's first events may be all there is for a while.
func status(t *testing.T, method, u string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header}
}

// The access matrix, generated from the spec rather than listed by hand: for
// every secured operation, no token is 401, a token whose roles are all
// outside x-roles is 403, and a token with any one listed role gets past
// access control. An operation added to the spec adds its rows here.
func TestAccessMatrixFromSpec(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	// Account 1, which sample paths name, is nobody the tests below log in
	// as: the admin rows disable and delete it, revoking its tokens.
	e.CreateUser(t, "sample@example.com", "user")
	outsider := e.CreateUser(t, "outsider@example.com", "outsider")
	outsiderToken := e.Token(t, outsider)
	// One account per role, holding it for real: account administration
	// checks the account as well as the token.
	holders := map[string]apitest.User{}
	for _, role := range e.Spec.Policy.Roles() {
		holders[role] = e.CreateUser(t, role+"-holder@example.com", "unrelated", role)
	}
	// A machine client holding every role the spec names.
	clientToken, _, err := e.Tokens.Issue(token.Subject{ClientID: "cl_matrix", Roles: e.Spec.Policy.Roles()})
	if err != nil {
		t.Fatal(err)
	}
	secured := 0
	for _, rule := range e.Spec.Policy.Rules {
		if rule.Public {
			continue
		}
		secured++
		target := e.URL + samplePath(e.Spec.Doc, rule.Path, rule.Method)
		name := rule.Method + " " + rule.Path
		t.Run(name+"/no token", func(t *testing.T) {
			t.Parallel()
			r := do(t, rule.Method, target, nil, nil)
			assertProblem(t, r, 401)
			if r.header.Get("WWW-Authenticate") != `Bearer realm="rolegate"` {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
		if len(rule.Roles) > 0 && rule.Org != "" {
			// Not a member: 404, as for an organization that does not
			// exist, so that none leaks.
			t.Run(name+"/not a member", func(t *testing.T) {
				t.Parallel()
				assertProblem(t, do(t, rule.Method, target, nil, bearer(outsiderToken)), 404)
			})
		}
		if len(rule.Roles) > 0 && rule.Org == "" {
			t.Run(name+"/no listed role", func(t *testing.T) {
				t.Parallel()
				r := do(t, rule.Method, target, nil, bearer(outsiderToken))
				m := assertProblem(t, r, 403)
				var got []string
				for _, v := range m["required_roles"].([]any) {
					got = append(got, v.(string))
				}
				if !slices.Equal(got, rule.Roles) {
					t.Errorf("required_roles = %v, want x-roles %v", got, rule.Roles)
				}
			})
		}
		// A valid token is never answered 401 for being a client's (an SDK
		// would refresh in a loop): x-callers [user] refuses it with 403
		// and a type of its own, naming no roles; anything else admits it.
		t.Run(name+"/machine client", func(t *testing.T) {
			t.Parallel()
			var r response
			if streams(e.Spec.Doc, rule.Path, rule.Method) && !rule.PeopleOnly {
				r = status(t, rule.Method, target, bearer(clientToken))
			} else {
				r = do(t, rule.Method, target, nil, bearer(clientToken))
			}
			if rule.PeopleOnly {
				m := assertProblem(t, r, 403)
				if m["type"] != problem.TypeUserAccountsOnly {
					t.Errorf("type = %v, want %s", m["type"], problem.TypeUserAccountsOnly)
				}
				if _, ok := m["required_roles"]; ok {
					t.Errorf("required_roles = %v, want none", m["required_roles"])
				}
				return
			}
			if r.status == 401 || r.status == 403 || r.status >= 500 {
				t.Errorf("a machine client holding every role got %d %s", r.status, r.body)
			}
			if rule.Org != "" && len(rule.GlobalRoles) == 0 && r.status != 404 {
				t.Errorf("a machine client, no member of any organization, got %d, want 404", r.status)
			}
		})
		roles := rule.Roles
		if len(roles) == 0 {
			roles = []string{"outsider"}
		}
		for _, role := range roles {
			t.Run(name+"/role "+role, func(t *testing.T) {
				t.Parallel()
				u, ok := holders[role]
				if !ok {
					u = apitest.User{ID: outsider.ID, Email: outsider.Email, Roles: []string{"unrelated", role}}
				}
				target := target
				if orgRole, isOrg := strings.CutPrefix(role, access.OrgRolePrefix); isOrg {
					// An organization of the subtest's own, of which u holds
					// the role (any one for org:*).
					var org int64
					u, org = orgMember(t, e, orgRole)
					target = e.URL + strings.Replace(samplePath(e.Spec.Doc, rule.Path, rule.Method), "/orgs/1", "/orgs/"+strconv.FormatInt(org, 10), 1)
					// A member acts on their own membership (leaving): on
					// another's, the object-level rule answers.
					target = strings.Replace(target, "/members/1", "/members/"+strconv.FormatInt(u.ID, 10), 1)
				}
				var r response
				if streams(e.Spec.Doc, rule.Path, rule.Method) {
					r = status(t, rule.Method, target, bearer(e.Token(t, u)))
				} else {
					r = do(t, rule.Method, target, nil, bearer(e.Token(t, u)))
				}
				if r.status == 401 || r.status == 403 {
					t.Errorf("a token with role %s got %d %s", role, r.status, r.body)
				}
				if r.status >= 500 {
					t.Errorf("got %d %s", r.status, r.body)
				}
			})
		}
	}
	if secured == 0 {
		t.Fatal("the spec has no secured operation")
	}
}

// Every public operation answers without a token (with sign-up open, or
// its operations would be 403 for that).
func TestPublicOperationsNeedNoToken(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{SignUp: true})
	for _, rule := range e.Spec.Policy.Rules {
		if !rule.Public {
			continue
		}
		r := do(t, rule.Method, e.URL+samplePath(e.Spec.Doc, rule.Path, rule.Method), nil, nil)
		if r.status == 401 || r.status == 403 || r.status >= 500 {
			t.Errorf("%s %s without a token = %d %s", rule.Method, rule.Path, r.status, r.body)
		}
	}
}

// orgs counts the organizations orgMember made, for their slugs.
var orgs atomic.Int64

// orgMember makes an organization, and a member of it holding role
// (owner: its creator; * any role, viewer): through the API, as people
// would.
func orgMember(t *testing.T, e *apitest.Env, role string) (apitest.User, int64) {
	t.Helper()
	n := orgs.Add(1)
	owner := e.CreateUser(t, fmt.Sprintf("org-owner-%d@example.com", n), "user")
	r := do(t, "POST", e.URL+"/orgs", strings.NewReader(fmt.Sprintf(`{"slug":"matrix-%d","name":"Matrix %d"}`, n, n)), jsonHeaders(e.Token(t, owner)))
	id, _ := r.json(t)["id"].(float64)
	if r.status != 201 || id == 0 {
		t.Fatalf("POST /orgs = %d %s", r.status, r.body)
	}
	if role == "owner" {
		return owner, int64(id)
	}
	if role == access.AnyMember {
		role = "viewer"
	}
	m := e.CreateUser(t, fmt.Sprintf("org-member-%d@example.com", n), "user")
	r = do(t, "PUT", fmt.Sprintf("%s/orgs/%d/members/%d", e.URL, int64(id), m.ID), strings.NewReader(`{"roles":["`+role+`"]}`), jsonHeaders(e.Token(t, owner)))
	if r.status != 200 {
		t.Fatalf("PUT member = %d %s", r.status, r.body)
	}
	return m, int64(id)
}
