package handlers_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/apitest"
	"github.com/rolegate/rolegate/gen/api"
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

	tok, err := e.Client(t, "").CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{
		GrantType: ptr("password"), Username: ptr(alice.Email), Password: ptr(alice.Password),
	})
	if err != nil || tok.JSON200 == nil {
		t.Fatalf("login: %v %s", err, tok.Body)
	}
	c := e.Client(t, tok.JSON200.AccessToken)
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
	// The route admits only the user role: bob, an admin without... has user too.
	raw := do(t, "GET", e.URL+"/notes/document/src/"+url.PathEscape(src), nil, bearer(tok.JSON200.AccessToken))
	if raw.status != 200 {
		t.Errorf("raw GET = %d", raw.status)
	}
}

func ptr[T any](v T) *T { return &v }

// Bad note bodies get a 4xx naming the problem, never a 500, and leave no row.
func TestCreateNoteRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{MaxBodyBytes: 64 << 10})
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
		{"unknown field", `{"document_src":"d","title":"t","body":"b","owner_id":1}`, "application/json", 400, "body"},
		{"NUL byte", `{"document_src":"d","title":"a\u0000b","body":"b"}`, "application/json", 400, ""},
		{"array body", `[]`, "application/json", 400, "body"},
		{"form body", `title=t`, "application/x-www-form-urlencoded", 415, ""},
		{"over the body limit", `{"document_src":"d","title":"t","body":"` + strings.Repeat("b", 70<<10) + `"}`, "application/json", 413, ""},
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
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q, want POST", r.header.Get("Allow"))
	}
}
