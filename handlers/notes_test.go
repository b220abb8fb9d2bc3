package handlers_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
)

func jsonHeaders(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
}

// The seed's flow through the generated client: log in, create notes, read
// them back by document source; nobody sees another's notes.
func TestNotesByDocument(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	alice := e.CreateUser(t, "alice@example.com", "user")
	bob := e.CreateUser(t, "bob@example.com", "user", "admin")

	c := e.Login(t, alice)       // through /token, with the Go SDK
	src := "reports/2026 q3.pdf" // a slash and a space in the path segment
	for _, title := range []string{"first", "second"} {
		resp, err := c.CreateNoteWithResponse(ctx, api.CreateNoteJSONRequestBody{DocumentSrc: src, Title: title, Body: "text"})
		if err != nil || resp.JSON201 == nil {
			t.Fatalf("create note: %v %d %s", err, resp.StatusCode(), resp.Body)
		}
		if loc := resp.HTTPResponse.Header.Get("Location"); loc == "" || !strings.HasSuffix(loc, "/notes/"+itoa(resp.JSON201.Id)) {
			t.Errorf("Location = %q", loc)
		}
		if resp.JSON201.OwnerId != alice.ID || resp.JSON201.Title != title {
			t.Errorf("created note = %+v", resp.JSON201)
		}
	}
	// Bob's note on the same document is not Alice's.
	bobClient := e.Client(t, e.Token(t, bob))
	if resp, err := bobClient.CreateNoteWithResponse(ctx, api.CreateNoteJSONRequestBody{DocumentSrc: src, Title: "bob's", Body: ""}); err != nil || resp.StatusCode() != 201 {
		t.Fatalf("bob's note: %v", err)
	}

	list, err := c.ListNotesByDocumentWithResponse(ctx, src)
	if err != nil || list.JSON200 == nil {
		t.Fatalf("list: %v %s", err, list.Body)
	}
	var titles []string
	for _, n := range *list.JSON200 {
		titles = append(titles, n.Title)
	}
	if strings.Join(titles, ",") != "second,first" {
		t.Errorf("alice's notes on %q = %v, want second,first (newest first, no one else's)", src, titles)
	}
	if empty, _ := c.ListNotesByDocumentWithResponse(ctx, "other.pdf"); empty.JSON200 == nil || len(*empty.JSON200) != 0 {
		t.Errorf("notes on another document = %s", empty.Body)
	}
	// The raw path, percent-encoded.
	raw := do(t, "GET", e.URL+"/notes/document/src/"+url.PathEscape(src), nil, bearer(e.Token(t, alice)))
	if raw.status != 200 {
		t.Errorf("raw GET = %d", raw.status)
	}
}

func ptr[T any](v T) *T { return &v }

// Bad note bodies get a 4xx naming the problem, never a 500, and leave no row.
func TestCreateNoteRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "val@example.com", "user")
	tok := e.Token(t, u)
	tests := []struct {
		name      string
		body      string
		ct        string
		want      int
		wantField string
	}{
		{"not JSON", `{"title":`, "application/json", 400, "body"},
		{"missing field", `{"document_src":"d","body":"b"}`, "application/json", 400, "body.title"},
		{"title too long", `{"document_src":"d","title":"` + strings.Repeat("t", 201) + `","body":"b"}`, "application/json", 400, "body.title"},
		{"empty title", `{"document_src":"d","title":"","body":"b"}`, "application/json", 400, "body.title"},
		{"wrong type", `{"document_src":"d","title":7,"body":"b"}`, "application/json", 400, "body.title"},
		{"unknown field", `{"document_src":"d","title":"t","body":"b","owner_id":1}`, "application/json", 400, "body.owner_id"},
		{"NUL byte", `{"document_src":"d","title":"a\u0000b","body":"b"}`, "application/json", 400, ""},
		{"array body", `[]`, "application/json", 400, "body"},
		{"form body", `title=t`, "application/x-www-form-urlencoded", 415, ""},
		{"over the body limit", `{"document_src":"d","title":"t","body":"` + strings.Repeat("b", 300<<10) + `"}`, "application/json", 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := jsonHeaders(tok)
			h["Content-Type"] = tt.ct
			r := do(t, "POST", e.URL+"/notes", strings.NewReader(tt.body), h)
			m := assertProblem(t, r, tt.want)
			if tt.wantField != "" {
				errs, _ := m["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] != tt.wantField {
					t.Errorf("errors = %v, want field %s", m["errors"], tt.wantField)
				}
			}
			for _, leak := range []string{"SQLSTATE", "pgx", "goroutine", "kin-openapi"} {
				if strings.Contains(r.body, leak) {
					t.Errorf("body leaks %q: %s", leak, r.body)
				}
			}
		})
	}
	var n int
	if err := e.Pool.QueryRow(context.Background(), "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d notes written by bad requests (err %v)", n, err)
	}
}

func TestUnroutedRequests(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	assertProblem(t, do(t, "GET", e.URL+"/nope", nil, nil), 404)
	r := do(t, "DELETE", e.URL+"/notes", nil, nil)
	assertProblem(t, r, 405)
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q, want GET, POST", r.header.Get("Allow"))
	}
}

// Walking the cursor over 250 notes returns each exactly once, newest first.
// They are inserted in one statement, so they share one created_at and the
// id alone orders them: the keyset must break ties.
func TestListNotesPagination(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	u := e.CreateUser(t, "pages@example.com", "user")
	other := e.CreateUser(t, "other@example.com", "user")
	if _, err := e.Pool.Exec(ctx, `INSERT INTO notes (owner_id, document_src, title, body)
		SELECT $1, 'doc', 'n' || i, '' FROM generate_series(1, 250) i`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(ctx, `INSERT INTO notes (owner_id, document_src, title, body) VALUES ($1, 'doc', 'not yours', '')`, other.ID); err != nil {
		t.Fatal(err)
	}
	c := e.Client(t, e.Token(t, u))
	seen := map[int64]bool{}
	var lastID int64 = 1 << 62
	var cursor *string
	pages := 0
	for {
		limit := 40
		resp, err := c.ListNotesWithResponse(ctx, &api.ListNotesParams{Limit: &limit, Cursor: cursor})
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("page %d: %v %s", pages, err, resp.Body)
		}
		pages++
		for _, n := range resp.JSON200.Items {
			if seen[n.Id] || n.Id >= lastID || n.OwnerId != u.ID {
				t.Fatalf("note %d out of order, repeated or not the caller's", n.Id)
			}
			seen[n.Id], lastID = true, n.Id
		}
		if resp.JSON200.NextCursor == nil {
			break
		}
		cursor = resp.JSON200.NextCursor
	}
	if len(seen) != 250 || pages != 7 {
		t.Fatalf("saw %d notes in %d pages, want 250 in 7", len(seen), pages)
	}
	// Bounds and cursors come from the spec and the handler: bad ones are 400.
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=bm90LWEtY3Vyc29y", "cursor=" + strings.Repeat("a", 201)} {
		assertProblem(t, do(t, "GET", e.URL+"/notes?"+q, nil, bearer(e.Token(t, u))), 400)
	}
	// Default page size is 50.
	if resp, _ := c.ListNotesWithResponse(ctx, nil); resp.JSON200 == nil || len(resp.JSON200.Items) != 50 {
		t.Errorf("default page: %s", resp.Body)
	}
}

// Only the owner or an admin may read, change or delete a note; anyone
// else gets 404, exactly as for a note that does not exist.
func TestNoteObjectLevelAccess(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	alice := e.CreateUser(t, "alice@example.com", "user")
	bob := e.CreateUser(t, "bob@example.com", "user")
	admin := e.CreateUser(t, "root@example.com", "admin")
	ac, bc, adm := e.Client(t, e.Token(t, alice)), e.Client(t, e.Token(t, bob)), e.Client(t, e.Token(t, admin))

	created, err := bc.CreateNoteWithResponse(ctx, api.CreateNoteJSONRequestBody{DocumentSrc: "d", Title: "bob's", Body: "secret"})
	if err != nil || created.JSON201 == nil {
		t.Fatal(err)
	}
	id := created.JSON201.Id
	missing := id + 1000
	title := "changed"

	notFound := func(name string, status int, body []byte) {
		t.Helper()
		if status != 404 || strings.Contains(string(body), "secret") {
			t.Errorf("%s = %d %s, want 404", name, status, body)
		}
	}
	// Alice on Bob's note answers exactly as on a missing one.
	for _, target := range []int64{id, missing} {
		g, _ := ac.GetNoteWithResponse(ctx, target)
		notFound("alice get", g.StatusCode(), g.Body)
		p, _ := ac.UpdateNoteWithResponse(ctx, target, api.UpdateNoteJSONRequestBody{Title: &title})
		notFound("alice patch", p.StatusCode(), p.Body)
		d, _ := ac.DeleteNoteWithResponse(ctx, target)
		notFound("alice delete", d.StatusCode(), d.Body)
	}
	if l, _ := ac.ListNotesWithResponse(ctx, &api.ListNotesParams{OwnerId: &bob.ID}); l.StatusCode() != 403 {
		t.Errorf("alice listing bob's notes = %d, want 403", l.StatusCode())
	}
	// The owner and an admin can.
	if g, _ := bc.GetNoteWithResponse(ctx, id); g.JSON200 == nil || g.JSON200.Body != "secret" {
		t.Errorf("bob get = %d", g.StatusCode())
	}
	if g, _ := adm.GetNoteWithResponse(ctx, id); g.JSON200 == nil {
		t.Errorf("admin get = %d", g.StatusCode())
	}
	if l, _ := adm.ListNotesWithResponse(ctx, &api.ListNotesParams{OwnerId: &bob.ID}); l.JSON200 == nil || len(l.JSON200.Items) != 1 {
		t.Errorf("admin listing bob's notes = %d %s", l.StatusCode(), l.Body)
	}
	p, _ := adm.UpdateNoteWithResponse(ctx, id, api.UpdateNoteJSONRequestBody{Title: &title})
	if p.JSON200 == nil || p.JSON200.Title != "changed" || p.JSON200.Body != "secret" || !p.JSON200.UpdatedAt.After(p.JSON200.CreatedAt) {
		t.Errorf("admin patch = %d %s", p.StatusCode(), p.Body)
	}
	if r := do(t, "PATCH", e.URL+"/notes/"+itoa(id), strings.NewReader(`{}`), jsonHeaders(e.Token(t, bob))); r.status != 400 {
		t.Errorf("empty patch = %d, want 400", r.status)
	}
	if d, _ := bc.DeleteNoteWithResponse(ctx, id); d.StatusCode() != 204 {
		t.Errorf("bob delete = %d", d.StatusCode())
	}
	if g, _ := bc.GetNoteWithResponse(ctx, id); g.StatusCode() != 404 {
		t.Errorf("get after delete = %d", g.StatusCode())
	}
	assertProblem(t, do(t, "GET", e.URL+"/notes/abc", nil, bearer(e.Token(t, bob))), 400)
	assertProblem(t, do(t, "GET", e.URL+"/notes/0", nil, bearer(e.Token(t, bob))), 400)
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
