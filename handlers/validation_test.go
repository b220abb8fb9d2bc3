package handlers_test

import (
	"strings"
	"testing"

	"github.com/rolegate/rolegate/apitest"
)

// The limits and formats the spec declares are enforced, each answered with
// a 400 naming the field.
func TestDeclaredLimitsAreEnforced(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	admin := e.CreateUser(t, "limits@example.com", "admin", "user")
	h := jsonHeaders(e.Token(t, admin))
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, method, path, body, wantField string
	}{
		{"email format", "POST", "/users", `{"email":"not an email","password":"long enough password","roles":[]}`, "body.email"},
		{"email with a display name", "POST", "/users", `{"email":"Eve <eve@example.com>","password":"long enough password","roles":[]}`, "body.email"},
		{"email too long", "POST", "/users", `{"email":"` + long(250) + `@x.io","password":"long enough password","roles":[]}`, "body.email"},
		{"password too short", "POST", "/users", `{"email":"a@example.com","password":"short","roles":[]}`, "body.password"},
		{"password too long", "POST", "/users", `{"email":"a@example.com","password":"` + long(1025) + `","roles":[]}`, "body.password"},
		{"role name pattern", "POST", "/roles", `{"name":"Has Spaces"}`, "body.name"},
		{"role name too long", "POST", "/roles", `{"name":"` + long(65) + `"}`, "body.name"},
		{"too many roles", "PUT", "/users/1/roles", `{"roles":[` + strings.Repeat(`"r",`, 32) + `"r"]}`, "body.roles"},
		{"title too long", "POST", "/notes", `{"document_src":"d","title":"` + long(201) + `","body":""}`, "body.title"},
		{"body too long", "POST", "/notes", `{"document_src":"d","title":"t","body":"` + long(20001) + `"}`, "body.body"},
		{"document source too long", "POST", "/notes", `{"document_src":"` + long(501) + `","title":"t","body":""}`, "body.document_src"},
		{"new password too short", "POST", "/identify/me/password", `{"current_password":"x","new_password":"short"}`, "body.new_password"},
		{"page size", "GET", "/notes?limit=201", ``, "query.limit"},
		{"path id", "GET", "/users/0", ``, "path.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			} else {
				body = strings.NewReader("")
			}
			m := assertProblem(t, do(t, tt.method, e.URL+tt.path, body, h), 400)
			errs, _ := m["errors"].([]any)
			if len(errs) == 0 || !strings.HasPrefix(errs[0].(map[string]any)["field"].(string), tt.wantField) {
				t.Errorf("errors = %v, want field %s", m["errors"], tt.wantField)
			}
		})
	}
}
