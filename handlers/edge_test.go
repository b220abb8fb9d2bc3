package handlers_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolegate/rolegate/apitest"
	"github.com/rolegate/rolegate/password"
)

// assertOAuthError checks an RFC 6749 section 5.2 body with the given
// status and error code.
func assertOAuthError(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %s (Cache-Control %q) %s, want %d application/json, no-store",
			r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"), r.body, status)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Errorf("error = %v, want %s", m["error"], code)
	}
	return m
}

// Text PostgreSQL would refuse (invalid UTF-8, NUL) is refused at the edge
// with a declared 400 naming where it was, on every kind of input; it never
// reaches the database as a 500.
func TestBadTextIsRefusedAtTheEdge(t *testing.T) {
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

// A forged cursor whose time PostgreSQL cannot store is a 400, not a page
// from a time that wrapped around.
func TestForgedCursorOutOfRange(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tok := e.Token(t, e.CreateUser(t, "cursor@example.com", "user"))
	do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"a.pdf","title":"t","body":"b"}`), jsonHeaders(tok))
	// A cursor of the right form passes, so the refusals below are the
	// time's doing.
	ok := base64.RawURLEncoding.EncodeToString([]byte("k" + strconv.FormatInt(time.Now().UnixMicro(), 10) + ".1"))
	if r := do(t, "GET", e.URL+"/notes?cursor="+ok, nil, bearer(tok)); r.status != 200 {
		t.Fatalf("a well-formed cursor = %d %s", r.status, r.body)
	}
	for _, raw := range []string{"k9223372036854775807.1", "k-9223372036854775807.1", "k253402300800000000.1"} {
		cur := base64.RawURLEncoding.EncodeToString([]byte(raw))
		for _, path := range []string{"/notes", "/documents"} {
			m := assertProblem(t, do(t, "GET", e.URL+path+"?cursor="+cur, nil, bearer(tok)), 400)
			if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "query.cursor" {
				t.Errorf("%s with %s: errors = %v", path, raw, m["errors"])
			}
		}
	}
}

// A token whose account was deleted gets a declared 401 when it tries to
// create something, not a 500 from the foreign key.
func TestDeletedAccountTokenCannotCreate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	gone := e.CreateUser(t, "gone@example.com", "user")
	tok := e.Token(t, gone)
	if _, err := e.Pool.Exec(t.Context(), "DELETE FROM users WHERE id = $1", gone.ID); err != nil {
		t.Fatal(err)
	}
	assertTokenRefused(t, do(t, "POST", e.URL+"/notes", strings.NewReader(`{"document_src":"a.pdf","title":"t","body":"b"}`), jsonHeaders(tok)))
	ct, body := upload(t, "gone.pdf", makePDF(t, 1))
	assertTokenRefused(t, do(t, "POST", e.URL+"/documents", body, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ct}))
	if n := countRows(t, e, "SELECT (SELECT count(*) FROM notes) + (SELECT count(*) FROM documents)"); n != 0 {
		t.Errorf("%d rows left behind", n)
	}
	assertStoreConsistent(t, e)
}

// New passwords are counted in characters and may not be blank, through
// the API as on the command line.
func TestNewPasswordRules(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	create := func(pw string) response {
		return do(t, "POST", e.URL+"/users", strings.NewReader(`{"email":"p`+base64.RawURLEncoding.EncodeToString([]byte(pw))[:8]+`@example.com","password":"`+pw+`","roles":[]}`), jsonHeaders(tok))
	}
	for _, pw := range []string{strings.Repeat(" ", 12), strings.Repeat("\u3000", 12), strings.Repeat(" ", 13) + `\t`} {
		m := assertProblem(t, create(pw), 400)
		if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.password" {
			t.Errorf("blank password %q: errors = %v", pw, m["errors"])
		}
	}
	if r := create(strings.Repeat("密", 12)); r.status != 201 {
		t.Errorf("twelve CJK characters = %d %s, want 201", r.status, r.body)
	}

	frank := e.CreateUser(t, "frank@example.com", "user")
	m := assertProblem(t, do(t, "POST", e.URL+"/identify/me/password",
		strings.NewReader(`{"current_password":"`+frank.Password+`","new_password":"`+strings.Repeat("\u3000", 12)+`"}`), jsonHeaders(e.Token(t, frank))), 400)
	if errs, _ := m["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "body.new_password" {
		t.Errorf("blank new password: errors = %v", m["errors"])
	}
	if err := sdkLogin(t, e, frank.Email, frank.Password); err != nil {
		t.Errorf("the refused change broke the password: %v", err)
	}
}

// A disabled account's token can no longer change the password.
func TestDisabledAccountCannotChangePassword(t *testing.T) {
	t.Parallel()
	e, _, adminTok := adminEnv(t)
	frank := e.CreateUser(t, "frank@example.com", "user")
	tok := e.Token(t, frank)
	if r := do(t, "POST", e.URL+"/users/"+itoa(frank.ID)+"/disable", nil, bearer(adminTok)); r.status != 200 {
		t.Fatalf("disable = %d %s", r.status, r.body)
	}
	assertTokenRefused(t, do(t, "POST", e.URL+"/identify/me/password",
		strings.NewReader(`{"current_password":"`+frank.Password+`","new_password":"a brand new passphrase"}`), jsonHeaders(tok)))
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
