package handlers_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/documents/pdftest"
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

func makePDF(t *testing.T, pages int) []byte { return pdftest.Document(pages) }

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
	for _, rng := range []string{`["4"]`, `["0"]`, `["3-1"]`, `["1-2","2-9"]`, `["x"]`, `[]`, `["1","1"]`, `["1-3","2"]`} {
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

// uploadAs posts data as the multipart upload of name with the raw HTTP
// client (responses validated against the spec).
func uploadAs(t *testing.T, e *apitest.Env, tok, name string, data []byte) response {
	t.Helper()
	ct, body := upload(t, name, data)
	return do(t, "POST", e.URL+"/documents", body, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ct})
}

// mustUpload uploads data and returns the new document's id.
func mustUpload(t *testing.T, e *apitest.Env, tok, name string, data []byte) int64 {
	t.Helper()
	r := uploadAs(t, e, tok, name, data)
	if r.status != 201 {
		t.Fatalf("upload = %d %s", r.status, r.body)
	}
	return int64(r.json(t)["id"].(float64))
}

func splitAs(t *testing.T, e *apitest.Env, tok string, id int64, body string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/documents/"+itoa(id)+"/split", strings.NewReader(body), jsonHeaders(tok))
}

// documentRows returns the number of document rows and the bytes they
// take.
func documentRows(t *testing.T, e *apitest.Env) (n int, bytes int64) {
	t.Helper()
	err := e.Pool.QueryRow(context.Background(), "SELECT count(*), coalesce(sum(size_bytes), 0) FROM documents").Scan(&n, &bytes)
	if err != nil {
		t.Fatal(err)
	}
	return n, bytes
}

// Ranges that repeat or overlap are refused, naming the range: the split
// that turned a 50 KB upload into 1,000 documents (issue #8) is a 400.
func TestDocumentSplitRefusesRepeatedRanges(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "ranges@example.com", "user")
	tok := e.Token(t, u)
	id := mustUpload(t, e, tok, "three.pdf", makePDF(t, 3))
	thousand := `["` + strings.Repeat(`1","`, 999) + `1"]`
	tests := []struct {
		name, ranges, field, message string
	}{
		{"a thousand times page 1", thousand, "body.ranges.1", "repeats range 0"},
		{"duplicate", `["1","2","3","2"]`, "body.ranges.3", "repeats range 1"},
		{"same pages written otherwise", `["2-2","02"]`, "body.ranges.1", "repeats range 0"},
		{"overlapping", `["1-2","2-3"]`, "body.ranges.1", "overlaps range 0 (1-2)"},
		{"inside another", `["3","1-3"]`, "body.ranges.1", "overlaps range 0 (3)"},
		{"outside", `["1","4"]`, "body.ranges.1", "ends after the last page, 3"},
		{"backwards", `["3-1"]`, "body.ranges.0", "ends before it starts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := assertProblem(t, splitAs(t, e, tok, id, `{"ranges":`+tt.ranges+`}`), 400)
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 {
				t.Fatalf("errors = %v, want one naming %s", p["errors"], tt.field)
			}
			fe := errs[0].(map[string]any)
			if fe["field"] != tt.field || fe["message"] != tt.message {
				t.Errorf("error = %v, want field %s, message %q", fe, tt.field, tt.message)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tt.field) {
				t.Errorf("detail %q does not name %s", d, tt.field)
			}
		})
	}
	if n, _ := documentRows(t, e); n != 1 {
		t.Errorf("%d documents, want only the upload", n)
	}
	assertStoreConsistent(t, e)
}

// The parts of a split take at most MaxSplitGrowth times the source: pages
// that share a large image each carry a copy, and the split that would
// pass the bound is a 422 that leaves neither rows nor blobs behind.
func TestDocumentSplitByteCap(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "cap@example.com", "user")
	tok := e.Token(t, u)
	id := mustUpload(t, e, tok, "shared.pdf", pdftest.SharedImage(10, 256<<10))
	p := assertProblem(t, splitAs(t, e, tok, id, `{}`), 422)
	if d, _ := p["detail"].(string); !strings.Contains(d, "4 times") {
		t.Errorf("detail %q does not name the bound", d)
	}
	if n, _ := documentRows(t, e); n != 1 {
		t.Errorf("%d documents after the refused split, want 1", n)
	}
	assertStoreConsistent(t, e)
	// Ranges whose parts fit are split.
	if r := splitAs(t, e, tok, id, `{"ranges":["1-5","6-10"]}`); r.status != 201 {
		t.Errorf("split in two = %d %s", r.status, r.body)
	}
	assertStoreConsistent(t, e)
}

// A PDF whose page content inflates to far more than the work bounds is
// refused with 422 when uploaded, having been decompressed no further than
// the bound; one stored before the bound existed is refused when split.
func TestDocumentCompressionBomb(t *testing.T) {
	t.Parallel()
	e := apitest.New(t) // the default bound, documents.DefaultMaxDecodedBytes
	u := e.CreateUser(t, "bomb@example.com", "user")
	tok := e.Token(t, u)
	bomb := pdftest.Bomb("content", 4*documents.DefaultMaxDecodedBytes) // 256 MiB of zeros in some 300 KB
	assertProblem(t, uploadAs(t, e, tok, "bomb.pdf", bomb), 422)
	if n, _ := documentRows(t, e); n != 0 {
		t.Errorf("%d documents after the refused upload, want 0", n)
	}

	// Stored behind the API's back, as an upload of an older release.
	store, err := documents.OpenStore(context.Background(), (&url.URL{Scheme: "file", Path: e.BlobDir}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := documents.NewKey()
	if err := store.Put(context.Background(), key, bomb); err != nil {
		t.Fatal(err)
	}
	var id int64
	err = e.Pool.QueryRow(context.Background(), `INSERT INTO documents (owner_id, file_name, size_bytes, page_count, blob_key)
		VALUES ($1, 'bomb.pdf', $2, 1, $3) RETURNING id`, u.ID, len(bomb), key).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, splitAs(t, e, tok, id, `{}`), 422)
	if n, _ := documentRows(t, e); n != 1 {
		t.Errorf("%d documents after the refused split, want the planted 1", n)
	}
	assertStoreConsistent(t, e)
}

// A user's documents take at most the quota: an upload or a split past it
// is a 409 whose detail names the quota and the use, and leaves nothing
// behind.
func TestDocumentQuota(t *testing.T) {
	t.Parallel()
	pdf := makePDF(t, 3)
	size := int64(len(pdf))
	quota := 2*size + size/2
	e := apitest.New(t, apitest.Options{QuotaBytes: quota})
	u, other := e.CreateUser(t, "quota@example.com", "user"), e.CreateUser(t, "other@example.com", "user")
	tok := e.Token(t, u)
	first := mustUpload(t, e, tok, "1.pdf", pdf)
	mustUpload(t, e, tok, "2.pdf", pdf)

	p := assertProblem(t, uploadAs(t, e, tok, "3.pdf", pdf), 409)
	detail, _ := p["detail"].(string)
	if !strings.Contains(detail, "quota of "+itoa(quota)+" bytes") || !strings.Contains(detail, itoa(2*size)+" in use") {
		t.Errorf("detail %q does not name the quota %d and the use %d", detail, quota, 2*size)
	}
	p = assertProblem(t, splitAs(t, e, tok, first, `{}`), 409)
	if detail, _ := p["detail"].(string); !strings.Contains(detail, "quota of "+itoa(quota)+" bytes") {
		t.Errorf("split detail %q does not name the quota", detail)
	}
	if n, used := documentRows(t, e); n != 2 || used != 2*size {
		t.Errorf("%d documents of %d bytes, want the 2 uploads of %d", n, used, 2*size)
	}
	assertStoreConsistent(t, e)
	// The quota is each user's own.
	mustUpload(t, e, e.Token(t, other), "1.pdf", pdf)
}

// Uploads that race each other still never take a user past the quota:
// the quota is checked in the transaction that inserts the row, with the
// owner's row locked.
func TestDocumentQuotaConcurrentUploads(t *testing.T) {
	t.Parallel()
	pdf := makePDF(t, 2)
	size := int64(len(pdf))
	const fit, tries = 5, 16
	quota := fit*size + size/2
	e := apitest.New(t, apitest.Options{QuotaBytes: quota, PDFWorkers: tries, PDFWorkersPerUser: tries})
	u := e.CreateUser(t, "race@example.com", "user")
	tok := e.Token(t, u)

	statuses := make(chan int, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ct, body := upload(t, "race.pdf", pdf)
			req, _ := http.NewRequest("POST", e.URL+"/documents", body)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", ct)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != fit || count[409] != tries-fit {
		t.Errorf("statuses %v, want %d × 201 and %d × 409", count, fit, tries-fit)
	}
	if n, used := documentRows(t, e); used > quota || n != fit {
		t.Errorf("%d documents of %d bytes stored, quota %d", n, used, quota)
	}
	assertStoreConsistent(t, e)
}

// A user runs a bounded number of PDF operations at once (429 with
// Retry-After beyond), and the replica too (503 with Retry-After).
func TestDocumentConcurrentOperationsBounded(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{PDFWorkersPerUser: 1, PDFWorkers: 2})
	busy, calm, third := e.CreateUser(t, "busy@example.com", "user"), e.CreateUser(t, "calm@example.com", "user"), e.CreateUser(t, "third@example.com", "user")
	busyTok, calmTok := e.Token(t, busy), e.Token(t, calm)
	pdf := makePDF(t, 2)
	id := mustUpload(t, e, busyTok, "mine.pdf", pdf)

	// busy's one slot is taken, as by a split still running.
	release, err := e.PDF.Slots.Take(busy.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]response{
		"upload": uploadAs(t, e, busyTok, "more.pdf", pdf),
		"split":  splitAs(t, e, busyTok, id, `{}`),
	} {
		assertProblem(t, r, 429)
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: Retry-After = %q, want whole seconds", name, r.header.Get("Retry-After"))
		}
	}
	// Others are not held up by busy's bound...
	mustUpload(t, e, calmTok, "calm.pdf", pdf)
	// ...but by the replica's: with the second slot taken too, 503.
	releaseThird, err := e.PDF.Slots.Take(third.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := uploadAs(t, e, calmTok, "calm.pdf", pdf)
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	releaseThird()
	release()
	mustUpload(t, e, busyTok, "more.pdf", pdf)
	if r := splitAs(t, e, busyTok, id, `{}`); r.status != 201 {
		t.Errorf("split once the slot is free = %d %s", r.status, r.body)
	}
	// Every slot is free again: both can be taken, one of them by busy.
	for _, u := range []apitest.User{busy, calm} {
		release, err := e.PDF.Slots.Take(u.ID)
		if err != nil {
			t.Fatalf("a slot is still taken after the requests: %v", err)
		}
		defer release()
	}
	assertStoreConsistent(t, e)
}

// A download is an attachment no cache keeps, named safely: no bidi
// override, zero-width or control character, quote or backslash reaches
// the header, in filename or filename*; the ASCII filename has only plain
// characters, and filename* carries the rest of the name (RFC 6266, RFC
// 8187).
func TestDocumentDownloadHeaders(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "download@example.com", "user")
	tok := e.Token(t, u)
	tests := []struct {
		upload, stored, disposition, served string
	}{
		{"report.pdf", "report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`, "report.pdf"},
		// "invoice", then a right-to-left override, so that "fdp.exe" shows as "exe.pdf".
		{"invoice\u202Efdp.exe\u200B.pdf", "invoicefdp.exe.pdf", `attachment; filename="invoicefdp.exe.pdf"; filename*=UTF-8''invoicefdp.exe.pdf`, "invoicefdp.exe.pdf"},
		{`a "quoted"; name=x.pdf`, `a "quoted"; name=x.pdf`, `attachment; filename="a _quoted__ name_x.pdf"; filename*=UTF-8''a%20_quoted_%3B%20name%3Dx.pdf`, "a _quoted_; name=x.pdf"},
		{`evil".pdf`, `evil".pdf`, `attachment; filename="evil_.pdf"; filename*=UTF-8''evil_.pdf`, "evil_.pdf"},
		{"Résumé 履歴書.pdf", "Résumé 履歴書.pdf", `attachment; filename="R_sum_ ___.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E5%B1%A5%E6%AD%B4%E6%9B%B8.pdf`, "Résumé 履歴書.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.stored, func(t *testing.T) {
			r := uploadAs(t, e, tok, tt.upload, makePDF(t, 1))
			if r.status != 201 {
				t.Fatalf("upload = %d %s", r.status, r.body)
			}
			doc := r.json(t)
			if doc["file_name"] != tt.stored {
				t.Errorf("stored name %q, want %q", doc["file_name"], tt.stored)
			}
			r = do(t, "GET", e.URL+"/documents/"+itoa(int64(doc["id"].(float64)))+"/content", nil, map[string]string{"Authorization": "Bearer " + tok})
			if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" {
				t.Fatalf("download = %d %s", r.status, r.header.Get("Content-Type"))
			}
			for k, want := range map[string]string{
				"Content-Disposition":    tt.disposition,
				"Cache-Control":          "private, no-store",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			// mime reads filename* when there is one, as browsers do.
			disposition, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
			if err != nil || disposition != "attachment" || params["filename"] != tt.served {
				t.Errorf("parsed disposition %q %q (%v), want attachment named %q", disposition, params, err, tt.served)
			}
			if strings.ContainsAny(params["filename"], `"\`) {
				t.Errorf("served name %q holds a quote or a backslash", params["filename"])
			}
		})
	}
}

// An upload holds the field file and nothing else (the spec's
// additionalProperties: false); the SDK would not send another, so this
// goes by raw HTTP.
func TestDocumentUploadRefusesOtherFields(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "fields@example.com", "user")
	tok := e.Token(t, u)
	for name, build := range map[string]func(w *multipart.Writer){
		"field after the file": func(w *multipart.Writer) {
			part, _ := w.CreateFormFile("file", "x.pdf")
			part.Write(makePDF(t, 1))
			w.WriteField("owner_id", "1")
		},
		"field before the file": func(w *multipart.Writer) {
			w.WriteField("note", "hello")
			part, _ := w.CreateFormFile("file", "x.pdf")
			part.Write(makePDF(t, 1))
		},
		"a second file": func(w *multipart.Writer) {
			part, _ := w.CreateFormFile("file", "x.pdf")
			part.Write(makePDF(t, 1))
			part, _ = w.CreateFormFile("other", "y.pdf")
			part.Write(makePDF(t, 1))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			build(w)
			w.Close()
			r := do(t, "POST", e.URL+"/documents", &b, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": w.FormDataContentType()})
			assertProblem(t, r, 400)
		})
	}
	if n, _ := documentRows(t, e); n != 0 {
		t.Errorf("%d documents stored, want none", n)
	}
	assertStoreConsistent(t, e)
}

// A split's memory stays within a small multiple of the source's size,
// however much its parts would amplify it: each part is written to the
// store and dropped before the next is made, and the split stops at
// MaxSplitGrowth times the source. Issue #8 measured a 300 KB upload
// growing the server by 426 MB, when every part was held until all were
// made. The peak is measured on this process's own heap (the server runs
// in it), sampled while the split runs.
func TestDocumentSplitMemoryBounded(t *testing.T) {
	// Not parallel: it measures the heap of the whole test process, which
	// parallel tests would disturb; Go runs it before resuming them.
	e := apitest.New(t)
	u := e.CreateUser(t, "memory@example.com", "user")
	tok := e.Token(t, u)
	// 40 pages drawing one 2 MiB image: split per page, 40 parts of 2 MiB.
	const pages, image = 40, 2 << 20
	src := int64(len(pdftest.SharedImage(pages, image)))
	id := mustUpload(t, e, tok, "shared.pdf", pdftest.SharedImage(pages, image))

	// A low GOGC keeps garbage from passing for memory held, so that the
	// heap sampled is close to what the split keeps alive.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapBytes()
	peak := base
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			peak = max(peak, heapBytes())
			time.Sleep(200 * time.Microsecond) // sampling interval, not synchronisation
		}
	}()
	r := splitAs(t, e, tok, id, `{}`)
	close(stop)
	<-stopped

	growth := int64(peak) - int64(base)
	bound := 6*src + 8<<20 // the source, its parsed copy, one part, pdfcpu's working set
	t.Logf("source %d bytes; heap grew by %d bytes during the split (bound %d)", src, growth, bound)
	if growth > bound {
		t.Errorf("the heap grew by %d MiB for a %d KiB source, over the bound of %d MiB", growth>>20, src>>10, bound>>20)
	}
	assertProblem(t, r, 422) // 40 parts of the image's size are over 4 times the source
	if n, _ := documentRows(t, e); n != 1 {
		t.Errorf("%d documents after the refused split, want 1", n)
	}
	assertStoreConsistent(t, e)
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapBytes returns the bytes of heap objects, live or not yet swept; unlike
// runtime.ReadMemStats it does not stop the world.
func heapBytes() uint64 {
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}

// A PDF operation past ROLEGATE_PDF_TIMEOUT is a 422, and frees its slot.
func TestDocumentPDFTimeout(t *testing.T) {
	t.Parallel()
	// Over before it starts; one slot in all, so that taking it shows it free.
	e := apitest.New(t, apitest.Options{PDFTimeout: time.Nanosecond, PDFWorkers: 1, PDFWorkersPerUser: 1})
	u := e.CreateUser(t, "slow@example.com", "user")
	p := assertProblem(t, uploadAs(t, e, e.Token(t, u), "slow.pdf", makePDF(t, 1)), 422)
	if d, _ := p["detail"].(string); !strings.Contains(d, "work bounds") {
		t.Errorf("detail %q does not say why", d)
	}
	release, err := e.PDF.Slots.Take(u.ID)
	if err != nil {
		t.Fatalf("the slot is still taken: %v", err)
	}
	release()
	assertStoreConsistent(t, e)
}
