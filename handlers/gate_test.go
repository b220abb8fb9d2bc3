package handlers_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/apitest"
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

// Text PostgreSQL would refuse (invalid UTF-8, NUL) is refused at the edge
// with a declared 400 naming where it was, on every kind of input; it never
// reaches the database as a 500.
func TestBadTextIsRefusedAtTheGate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "text@example.com", "user", "admin")
	tok := e.Token(t, u)
	note := do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"a.pdf","title":"t","body":"b"}`), jsonHeaders(tok))
	if note.status != 201 {
		t.Fatalf("create note = %d %s", note.status, note.body)
	}
	noteURL := e.URL + note.header.Get("Location")

	t.Run("token form", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{
			"grant_type=password&username=%ff&password=x",
			"grant_type=password&username=a%00b@example.com&password=x",
			"grant_type=password&username=text@example.com&password=%c3%28",
			"grant_type=password&username=text@example.com&password=a%00",
			"grant_type=password&user%ffname=x&username=a&password=b",
		} {
			r := do(t, "POST", e.URL+"/token", strings.NewReader(body), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			m := assertOAuthError(t, r, 400, "invalid_request")
			if d, _ := m["error_description"].(string); !strings.Contains(d, "UTF-8") {
				t.Errorf("%s: error_description %q does not say what is wrong", body, d)
			}
		}
	})

	tests := []struct {
		name, method, url, body, field string
	}{
		{"path parameter, invalid UTF-8", "GET", e.URL + "/notes/document/src/%ff", "", "path.src"},
		{"path parameter, NUL", "GET", e.URL + "/notes/document/src/a%00b", "", "path.src"},
		{"query parameter", "GET", e.URL + "/notes?cursor=%ff", "", "query.cursor"},
		{"query parameter, NUL", "GET", e.URL + "/users?role=a%00", "", "query.role"},
		{"JSON string with \\u0000", "POST", e.URL + "/notes", `{"document_src":"a.pdf","title":"a\u0000b","body":""}`, "body"},
		{"JSON key with \\u0000", "PATCH", noteURL, `{"title":"t","x\u0000":1}`, "body"},
		{"JSON with invalid UTF-8", "POST", e.URL + "/notes", "{\"document_src\":\"a.pdf\",\"title\":\"\xff\xfe\",\"body\":\"\"}", "body"},
		{"email with \\u0000", "POST", e.URL + "/users", `{"email":"a\u0000@example.com","password":"a long enough password","roles":[]}`, "body"},
		{"role name with invalid UTF-8", "POST", e.URL + "/roles", "{\"name\":\"r\xc3\"}", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			var r response
			if body != nil {
				r = do(t, tt.method, tt.url, body, jsonHeaders(tok))
			} else {
				r = do(t, tt.method, tt.url, nil, bearer(tok))
			}
			m := assertProblem(t, r, 400)
			errs, _ := m["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != tt.field ||
				errs[0].(map[string]any)["message"] != "must be valid UTF-8 without NUL characters" {
				t.Errorf("errors = %v, want %s: must be valid UTF-8 without NUL characters", m["errors"], tt.field)
			}
		})
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("%d notes, want only the first one", n)
	}
}

// A JSON body is exactly one value: anything but white space after it is a
// 400, not silently ignored.
func TestJSONBodyIsOneValue(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tok := e.Token(t, e.CreateUser(t, "json@example.com", "user"))
	const note = `{"document_src":"a.pdf","title":"t","body":"b"}`
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"trailing junk", note + " junk", 400},
		{"two values", note + note, 400},
		{"trailing bracket", note + "}", 400},
		{"trailing white space", note + " \n\t", 201},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", e.URL+"/notes", strings.NewReader(tt.body), jsonHeaders(tok))
			if tt.status != 400 {
				if r.status != tt.status {
					t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
				}
				return
			}
			m := assertProblem(t, r, 400)
			if d, _ := m["detail"].(string); !strings.Contains(d, "one JSON value") {
				t.Errorf("detail %q does not say what is wrong", d)
			}
		})
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
}

// /token answers in RFC 6749's format even when the body is over its limit,
// whether the length is declared or not.
func TestTokenTooLargeIsAnOAuthError(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	big := "grant_type=password&username=a&password=" + strings.Repeat("x", 9000)
	// A strings.Reader has a known length; behind a MultiReader it is sent
	// chunked, and the limit is met while reading.
	for _, body := range []io.Reader{strings.NewReader(big), io.MultiReader(strings.NewReader(big))} {
		r := do(t, "POST", e.URL+"/token", body, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		assertOAuthError(t, r, http.StatusRequestEntityTooLarge, "invalid_request")
	}
}
