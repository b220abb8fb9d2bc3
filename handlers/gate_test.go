package handlers_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

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
			if d, _ := m["error_description"].(string); !strings.Contains(d, "UTF-8") && !strings.Contains(d, "NUL") {
				t.Errorf("%s: error_description %q does not say what is wrong", body, d)
			}
		}
	})

	const notUTF8, nul = "must be valid UTF-8", "must not contain a NUL character"
	tests := []struct {
		name, method, url, body, field, message, instance string
	}{
		{"path parameter, invalid UTF-8", "GET", e.URL + "/notes/document/src/%ff", "", "path.src", notUTF8, "/notes/document/src/%ff"},
		{"path parameter, NUL", "GET", e.URL + "/notes/document/src/a%00b", "", "path.src", nul, "/notes/document/src/a%00b"},
		{"query parameter", "GET", e.URL + "/notes?cursor=%ff", "", "query.cursor", notUTF8, "/notes"},
		{"query parameter, NUL", "GET", e.URL + "/users?role=a%00", "", "query.role", nul, "/users"},
		{"JSON string with \\u0000", "POST", e.URL + "/notes", `{"document_src":"a.pdf","title":"a\u0000b","body":""}`, "body", nul, "/notes"},
		{"JSON key with \\u0000", "PATCH", noteURL, `{"title":"t","x\u0000":1}`, "body", nul, note.header.Get("Location")},
		{"JSON with invalid UTF-8", "POST", e.URL + "/notes", "{\"document_src\":\"a.pdf\",\"title\":\"\xff\xfe\",\"body\":\"\"}", "body", notUTF8, "/notes"},
		{"email with \\u0000", "POST", e.URL + "/users", `{"email":"a\u0000@example.com","password":"a long enough password","roles":[]}`, "body", nul, "/users"},
		{"role name with invalid UTF-8", "POST", e.URL + "/roles", "{\"name\":\"r\xc3\"}", "body", notUTF8, "/roles"},
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
				errs[0].(map[string]any)["message"] != tt.message {
				t.Errorf("errors = %v, want %s: %s", m["errors"], tt.field, tt.message)
			}
			// The path as sent, escaped: never U+FFFD, raw bytes or a raw NUL.
			if m["instance"] != tt.instance {
				t.Errorf("instance = %q, want %q", m["instance"], tt.instance)
			}
			if !utf8.ValidString(r.body) || strings.ContainsRune(r.body, utf8.RuneError) || strings.Contains(r.body, `\u0000`) {
				t.Errorf("body %q echoes the bad text", r.body)
			}
		})
	}
	if n := countRows(t, e, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("%d notes, want only the first one", n)
	}
}

// libraryWords are phrases of kin-openapi's and encoding/json's own error
// text, which must never reach a client.
var libraryWords = []string{"doesn't match", "value must be", "Error at", "failed to decode", "JSON", "json.",
	"request body has an error", "cannot convert", "property \"", "Value is", "string length", "number must be",
	"there must be", "float64", "parameter", "schema"}

// Every 400 the validator gives names the field and says what is wrong in
// rolegate's words, made from the spec: wrong types, numbers out of range,
// bad JSON, deep nesting, unknown and missing fields, bad formats, on
// bodies, path and query parameters of several operations.
func TestBadRequestsSpeakRolegate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	admin := e.CreateUser(t, "words@example.com", "admin", "user")
	h := jsonHeaders(e.Token(t, admin))
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	tests := []struct {
		name, method, path, body, field, message string
	}{
		{"number out of range for a string", "POST", "/documents/1/split", `{"ranges":[1e400]}`, "body.ranges.0", "must be a string"},
		{"number for a string", "POST", "/documents/1/split", `{"ranges":[1]}`, "body.ranges.0", "must be a string"},
		{"string for an array", "POST", "/documents/1/split", `{"ranges":"1"}`, "body.ranges", "must be an array"},
		{"array for an object", "POST", "/documents/1/split", `[]`, "body", "must be an object"},
		{"unknown field", "POST", "/documents/1/split", `{"ranges":["1"],"x":1}`, "body.x", "is not a field this operation takes"},
		{"deep nesting", "POST", "/documents/1/split", `{"ranges":[` + deep + `]}`, "body", "is malformed"},
		{"cut off", "POST", "/documents/1/split", `{"ranges":`, "body", "is malformed"},
		{"not JSON", "POST", "/documents/1/split", `nul`, "body", "is malformed"},
		{"number out of range for a string, notes", "POST", "/notes", `{"document_src":"d","title":1e400,"body":""}`, "body.title", "must be a string"},
		{"missing field", "POST", "/notes", `{"document_src":"d","title":"t"}`, "body.body", "is required"},
		{"null", "PATCH", "/notes/1", `{"title":null}`, "body.title", "must not be null"},
		{"no fields", "PATCH", "/notes/1", `{}`, "body", "must have at least 1 field"},
		{"too short", "POST", "/identify/me/password", `{"current_password":"x","new_password":"short"}`, "body.new_password", "must be at least 12 characters long"},
		{"too long", "POST", "/roles", `{"name":"` + strings.Repeat("x", 65) + `"}`, "body.name", "must be at most 64 characters long"},
		{"pattern", "POST", "/roles", `{"name":"Has Spaces"}`, "body.name", "must match the pattern ^[a-z][a-z0-9_.-]*$"},
		{"email format", "POST", "/users", `{"email":"not an email","password":"long enough password","roles":[]}`, "body.email", "must be an email address"},
		{"boolean in an array of strings", "POST", "/clients", `{"name":"n","roles":[true]}`, "body.roles.0", "must be a string"},
		{"too many items", "PUT", "/users/1/roles", `{"roles":[` + strings.Repeat(`"r",`, 32) + `"r"]}`, "body.roles", "must have at most 32 items"},
		{"query below the minimum", "GET", "/notes?limit=0", ``, "query.limit", "must be at least 1"},
		{"query above the maximum", "GET", "/notes?limit=201", ``, "query.limit", "must be at most 200"},
		{"query not a number", "GET", "/notes?limit=abc", ``, "query.limit", "must be a whole number"},
		{"query out of range", "GET", "/notes?limit=1e400", ``, "query.limit", "must be a whole number"},
		{"query date-time", "GET", "/audit-events?since=yesterday", ``, "query.since", "must be a date and time as in RFC 3339, e.g. 2026-01-02T15:04:05Z"},
		{"query empty", "GET", "/users?role=", ``, "query.role", "must be at least 1 character long"},
		{"path not a number", "GET", "/users/abc", ``, "path.id", "must be a whole number within int64 range"},
		{"path out of range", "GET", "/users/99999999999999999999", ``, "path.id", "must be a whole number within int64 range"},
		{"path below the minimum", "GET", "/users/0", ``, "path.id", "must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := assertProblem(t, do(t, tt.method, e.URL+tt.path, strings.NewReader(tt.body), h), 400)
			errs, _ := m["errors"].([]any)
			var field, message string
			if len(errs) == 1 {
				field, _ = errs[0].(map[string]any)["field"].(string)
				message, _ = errs[0].(map[string]any)["message"].(string)
			}
			if field != tt.field || message != tt.message {
				t.Errorf("errors = %v, want [{%s %s}]", m["errors"], tt.field, tt.message)
			}
			detail, _ := m["detail"].(string)
			for _, w := range libraryWords {
				if strings.Contains(detail, w) || strings.Contains(message, w) {
					t.Errorf("detail %q, message %q: library wording %q", detail, message, w)
				}
			}
		})
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
