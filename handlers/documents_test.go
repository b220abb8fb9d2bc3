package handlers_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"mime/multipart"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/apitest"
	"github.com/rolegate/rolegate/documents"
	"github.com/rolegate/rolegate/gen/api"
)

// upload builds a multipart body with one "file" part.
func upload(t *testing.T, name string, data []byte) (string, io.Reader) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = part.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &b
}

func makePDF(t *testing.T, pages int) []byte {
	t.Helper()
	b, err := documents.MakePDF(pages)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertStoreConsistent checks that every document row has its blob and
// every blob its row.
func assertStoreConsistent(t *testing.T, e *apitest.Env) {
	t.Helper()
	blobs := map[string]bool{}
	err := filepath.WalkDir(e.BlobDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".pdf") {
			rel, _ := filepath.Rel(e.BlobDir, p)
			blobs[filepath.ToSlash(rel)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.Pool.Query(context.Background(), "SELECT blob_key FROM documents")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			t.Fatal(err)
		}
		n++
		if !blobs[key] {
			t.Errorf("row with blob %s has no blob", key)
		}
	}
	if n != len(blobs) {
		t.Errorf("%d rows but %d blobs: an orphan blob", n, len(blobs))
	}
}

func TestDocumentUploadSplitAndDownload(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	u := e.CreateUser(t, "pdf@example.com", "system")
	c := e.Client(t, e.Token(t, u))

	ct, body := upload(t, `C:\scans\report.pdf`, makePDF(t, 3))
	up, err := c.UploadDocumentWithBodyWithResponse(ctx, ct, body)
	if err != nil || up.JSON201 == nil {
		t.Fatalf("upload: %v %d %s", err, up.StatusCode(), up.Body)
	}
	doc := *up.JSON201
	if doc.PageCount != 3 || doc.FileName != "report.pdf" || doc.OwnerId != u.ID || doc.Size == 0 {
		t.Errorf("uploaded = %+v", doc)
	}
	if loc := up.HTTPResponse.Header.Get("Location"); loc != "/documents/"+itoa(doc.Id) {
		t.Errorf("Location = %q", loc)
	}

	// The seed's split: one document per page by default.
	split, err := c.SplitDocumentWithResponse(ctx, doc.Id, api.SplitDocumentJSONRequestBody{})
	if err != nil || split.JSON201 == nil || len(*split.JSON201) != 3 {
		t.Fatalf("split: %v %d %s", err, split.StatusCode(), split.Body)
	}
	for i, part := range *split.JSON201 {
		if part.PageCount != 1 || part.FileName != "report-p"+itoa(int64(i+1))+".pdf" {
			t.Errorf("part %d = %+v", i, part)
		}
		content, err := c.GetDocumentContentWithResponse(ctx, part.Id)
		if err != nil || content.StatusCode() != 200 || content.HTTPResponse.Header.Get("Content-Type") != "application/pdf" {
			t.Fatalf("content of part %d: %v %d", i, err, content.StatusCode())
		}
		if info, err := documents.Inspect(content.Body); err != nil || info.Pages != 1 {
			t.Errorf("part %d downloaded: %v pages, %v", i, info.Pages, err)
		}
	}
	// By ranges.
	ranges := []string{"1-2", "3"}
	split, err = c.SplitDocumentWithResponse(ctx, doc.Id, api.SplitDocumentJSONRequestBody{Ranges: &ranges})
	if err != nil || split.JSON201 == nil || len(*split.JSON201) != 2 || (*split.JSON201)[0].PageCount != 2 {
		t.Fatalf("split by ranges: %v %s", err, split.Body)
	}
	list, err := c.ListDocumentsWithResponse(ctx, nil)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 6 {
		t.Fatalf("list: %v %s", err, list.Body)
	}
	if del, _ := c.DeleteDocumentWithResponse(ctx, doc.Id); del.StatusCode() != 204 {
		t.Errorf("delete = %d", del.StatusCode())
	}
	if g, _ := c.GetDocumentWithResponse(ctx, doc.Id); g.StatusCode() != 404 {
		t.Errorf("get after delete = %d", g.StatusCode())
	}
	assertStoreConsistent(t, e)
}

// Bad uploads and splits get their 4xx and leave no blob without its row
// and no row without its blob.
func TestDocumentBadInput(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{MaxUploadBytes: 64 << 10})
	u := e.CreateUser(t, "bad@example.com", "user")
	tok := e.Token(t, u)
	good := makePDF(t, 3)
	multipartOf := func(data []byte) (string, io.Reader) { return upload(t, "x.pdf", data) }

	tests := []struct {
		name string
		ct   string
		body io.Reader
		want int
	}{
		{"not a PDF", "", strings.NewReader("hello"), 415},
		{"PNG", "", bytes.NewReader([]byte("\x89PNG\r\n\x1a\n0000")), 415},
		{"truncated PDF", "", bytes.NewReader(good[:len(good)/2]), 422},
		{"over the limit", "", bytes.NewReader(append(append([]byte{}, good...), bytes.Repeat([]byte(" "), 70<<10)...)), 413},
		{"no file part", "multipart/form-data; boundary=x", strings.NewReader("--x--\r\n"), 400},
		{"JSON instead of multipart", "application/json", strings.NewReader(`{}`), 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := tt.ct, tt.body
			if ct == "" {
				data, _ := io.ReadAll(tt.body)
				ct, body = multipartOf(data)
			}
			r := do(t, "POST", e.URL+"/documents", body, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ct})
			assertProblem(t, r, tt.want)
		})
	}
	// A split range outside the document.
	ct, body := upload(t, "three.pdf", good)
	r := do(t, "POST", e.URL+"/documents", body, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ct})
	if r.status != 201 {
		t.Fatalf("upload = %d %s", r.status, r.body)
	}
	id := int64(r.json(t)["id"].(float64))
	for _, rng := range []string{`["4"]`, `["0"]`, `["3-1"]`, `["1-2","2-9"]`, `["x"]`, `[]`} {
		r := do(t, "POST", e.URL+"/documents/"+itoa(id)+"/split", strings.NewReader(`{"ranges":`+rng+`}`), jsonHeaders(tok))
		assertProblem(t, r, 400)
	}
	var n int
	if err := e.Pool.QueryRow(context.Background(), "SELECT count(*) FROM documents").Scan(&n); err != nil || n != 1 {
		t.Errorf("documents rows = %d (err %v), want only the good upload", n, err)
	}
	assertStoreConsistent(t, e)
}

// Only the owner or an admin may read, download, split or delete a
// document; anyone else gets 404, as for a missing one.
func TestDocumentObjectLevelAccess(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	alice, bob, admin := e.CreateUser(t, "alice@example.com", "user"), e.CreateUser(t, "bob@example.com", "user"), e.CreateUser(t, "root@example.com", "admin")
	ac, bc, adm := e.Client(t, e.Token(t, alice)), e.Client(t, e.Token(t, bob)), e.Client(t, e.Token(t, admin))
	ct, body := upload(t, "bob.pdf", makePDF(t, 2))
	up, err := bc.UploadDocumentWithBodyWithResponse(ctx, ct, body)
	if err != nil || up.JSON201 == nil {
		t.Fatalf("upload: %v", err)
	}
	id := up.JSON201.Id
	for _, target := range []int64{id, id + 1000} {
		if g, _ := ac.GetDocumentWithResponse(ctx, target); g.StatusCode() != 404 {
			t.Errorf("alice get = %d", g.StatusCode())
		}
		if g, _ := ac.GetDocumentContentWithResponse(ctx, target); g.StatusCode() != 404 {
			t.Errorf("alice content = %d", g.StatusCode())
		}
		if s, _ := ac.SplitDocumentWithResponse(ctx, target, api.SplitDocumentJSONRequestBody{}); s.StatusCode() != 404 {
			t.Errorf("alice split = %d", s.StatusCode())
		}
		if d, _ := ac.DeleteDocumentWithResponse(ctx, target); d.StatusCode() != 404 {
			t.Errorf("alice delete = %d", d.StatusCode())
		}
	}
	if l, _ := ac.ListDocumentsWithResponse(ctx, &api.ListDocumentsParams{OwnerId: &bob.ID}); l.StatusCode() != 403 {
		t.Errorf("alice listing bob's documents = %d", l.StatusCode())
	}
	// An admin can; the split parts belong to the document's owner.
	s, _ := adm.SplitDocumentWithResponse(ctx, id, api.SplitDocumentJSONRequestBody{})
	if s.JSON201 == nil || len(*s.JSON201) != 2 || (*s.JSON201)[0].OwnerId != bob.ID {
		t.Fatalf("admin split = %d %s", s.StatusCode(), s.Body)
	}
	if l, _ := adm.ListDocumentsWithResponse(ctx, &api.ListDocumentsParams{OwnerId: &bob.ID}); l.JSON200 == nil || len(l.JSON200.Items) != 3 {
		t.Errorf("admin listing bob's documents = %s", l.Body)
	}
	// Deleting bob removes his documents, rows and bytes.
	if d, _ := adm.DeleteUserWithResponse(ctx, bob.ID); d.StatusCode() != 204 {
		t.Fatalf("delete bob = %d %s", d.StatusCode(), d.Body)
	}
	var n int
	if err := e.Pool.QueryRow(ctx, "SELECT count(*) FROM documents").Scan(&n); err != nil || n != 0 {
		t.Errorf("documents left after deleting their owner: %d", n)
	}
	assertStoreConsistent(t, e)
}
