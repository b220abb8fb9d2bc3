package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/problem"
)

// Documents implements the documents tag: PDF uploads, downloads and the
// seed's split operation. Metadata rows live in PostgreSQL and bytes in the
// blob store; every operation keeps the two in step, so that no failure
// leaves a row without its blob (a blob without a row can only outlive a
// crash, and is never visible).
type Documents struct {
	Pool    *pgxpool.Pool
	Queries *db.Queries
	Store   *documents.Store
	// PDF bounds the work of reading and splitting PDFs.
	PDF *documents.Processor
	// QuotaBytes bounds the bytes one user's documents take; zero means no
	// bound.
	QuotaBytes int64
}

// documentNotFound is the answer for a document that is missing or not the
// caller's.
const documentNotFound = "No such document."

// UploadDocument stores the one PDF in the multipart field "file". Returns
// 415 for content that is not a PDF, 422 for a damaged PDF or one past the
// work bounds, 400 for a malformed upload or one with another field, 409
// past the quota, 429 or 503 with Retry-After when too many PDF operations
// run; the middleware has already answered 413 for one over the limit.
func (d Documents) UploadDocument(ctx context.Context, req api.UploadDocumentRequestObject) (api.UploadDocumentResponseObject, error) {
	caller, err := ownerOf(ctx)
	if err != nil {
		return nil, err
	}
	name, data, err := readUpload(req.Body)
	if err != nil {
		return nil, err
	}
	// A cheap check first, so that an upload past the quota costs no PDF
	// work; insert checks again, under the lock.
	used, err := d.Queries.SumDocumentBytes(ctx, caller)
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	if err := d.overQuota(ctx, caller, used, int64(len(data))); err != nil {
		return nil, err
	}
	op, err := d.PDF.Begin(ctx, caller)
	if err != nil {
		return nil, pdfError(err)
	}
	info, err := op.Inspect(data)
	op.End()
	if err != nil {
		return nil, pdfError(err)
	}
	key := documents.NewKey()
	if err := d.Store.Put(ctx, key, data); err != nil {
		return nil, fmt.Errorf("storing document bytes: %w", err)
	}
	rows, err := d.insert(ctx, caller, []storedFile{{name: name, key: key, size: int64(len(data)), pages: info.Pages}})
	if err != nil {
		removeBlobs(ctx, d.Store, []string{key})
		return nil, err
	}
	return api.UploadDocument201JSONResponse{
		Body:    documentBody(rows[0]),
		Headers: api.UploadDocument201ResponseHeaders{Location: "/documents/" + strconv.FormatInt(rows[0].ID, 10)},
	}, nil
}

// readUpload reads the single "file" part of a multipart body; any other
// field is refused, as the spec's additionalProperties: false says.
func readUpload(r *multipart.Reader) (name string, data []byte, err error) {
	malformed := problem.New(problem.Invalid, "The upload is not a well-formed multipart body with one file.")
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, problem.Wrap(problem.Invalid, malformed.Detail, err)
		}
		if part.FormName() != "file" {
			part.Close()
			return "", nil, &problem.Error{Kind: problem.Invalid, Detail: "The upload may hold only the field file.",
				Fields: []api.FieldError{{Field: "body", Message: "has a field other than file"}}}
		}
		if data != nil {
			return "", nil, malformed
		}
		name = fileName(part.FileName())
		if data, err = io.ReadAll(part); err != nil {
			return "", nil, problem.Wrap(problem.Invalid, malformed.Detail, err)
		}
	}
	if data == nil {
		return "", nil, malformed
	}
	return name, data, nil
}

// fileName keeps the base of a client's file name, without control or
// format characters (bidi overrides, zero-width characters), at most 255
// bytes, ending in .pdf.
func fileName(s string) string {
	s = path.Base(strings.ReplaceAll(s, `\`, "/"))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" || s == "." || s == "/" {
		s = "document.pdf"
	}
	if !strings.HasSuffix(strings.ToLower(s), ".pdf") {
		s += ".pdf"
	}
	for len(s) > 255 {
		s = s[len(s)-255:] // keep the extension
	}
	return strings.ToValidUTF8(s, "")
}

// downloadName is the name a download is served under, in filename and
// filename* alike: the stored name through fileName again (rows stored
// before it dropped format characters may hold bidi overrides, zero-width
// or control characters), with quotes, which a client that decodes
// filename* could splice into a command line or a header of its own, made
// "_". Backslashes are gone already: fileName reads them as separators.
func downloadName(name string) string {
	return strings.ReplaceAll(fileName(name), `"`, "_")
}

// contentDisposition is the Content-Disposition of a download (RFC 6266):
// an attachment, so that no browser renders it in the API's origin, named
// by an ASCII filename for old clients, in which every character outside a
// plain set becomes "_", and by the full name as filename* (RFC 8187:
// UTF-8, percent-encoded), both from downloadName. mime.FormatMediaType
// writes only one of the two (filename* alone for a name that is not
// ASCII), hence by hand.
func contentDisposition(name string) string {
	name = downloadName(name)
	var ascii, utf strings.Builder
	for _, r := range name {
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" .,_-+()[]", r)):
			ascii.WriteRune(r)
		default:
			ascii.WriteByte('_')
		}
	}
	for _, c := range []byte(name) {
		if c < utf8.RuneSelf && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			utf.WriteByte(c)
		} else {
			fmt.Fprintf(&utf, "%%%02X", c)
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + utf.String()
}

// pdfError maps the documents package's errors to the client's.
func pdfError(err error) error {
	var (
		busy *documents.BusyError
		bad  *documents.RangeError
	)
	switch {
	case errors.As(err, &busy):
		retry := http.Header{"Retry-After": {strconv.Itoa(max(1, int(math.Ceil(busy.RetryAfter.Seconds()))))}}
		if errors.Is(err, documents.ErrBusy) {
			return &problem.Error{Kind: problem.Unavailable, Detail: "The server runs as many PDF operations as it can at once; retry shortly.", Header: retry, Err: err}
		}
		return &problem.Error{Kind: problem.TooManyRequests, Detail: "You run as many PDF operations as you may at once; retry when one has finished.", Header: retry, Err: err}
	case errors.As(err, &bad):
		field := "body.ranges." + strconv.Itoa(bad.Index)
		return &problem.Error{Kind: problem.Invalid, Detail: fmt.Sprintf("The request is invalid: %s (%q) %s.", field, bad.Spec, bad.Reason),
			Fields: []api.FieldError{{Field: field, Message: bad.Reason}}, Err: err}
	case errors.Is(err, documents.ErrBadRange):
		return &problem.Error{Kind: problem.Invalid, Detail: "The page ranges do not fit the document.",
			Fields: []api.FieldError{{Field: "body.ranges", Message: "do not fit the document"}}, Err: err}
	case errors.Is(err, documents.ErrNotPDF):
		return problem.Wrap(problem.UnsupportedMedia, "The file is not a PDF.", err)
	case errors.Is(err, documents.ErrDamaged):
		return problem.Wrap(problem.Unprocessable, "The PDF is damaged or cannot be read.", err)
	case errors.Is(err, documents.ErrEncrypted):
		return problem.Wrap(problem.Unprocessable, "The PDF is encrypted.", err)
	case errors.Is(err, documents.ErrTooManyPages):
		return problem.Wrap(problem.Unprocessable, fmt.Sprintf("The PDF has more than %d pages.", documents.MaxPages), err)
	case errors.Is(err, documents.ErrTooCostly):
		return problem.Wrap(problem.Unprocessable, "Reading the PDF takes more than the server's work bounds (decompressed bytes or time).", err)
	case errors.Is(err, documents.ErrTooLarge):
		return problem.Wrap(problem.Unprocessable, fmt.Sprintf("The parts would take more than %d times the document's bytes.", documents.MaxSplitGrowth), err)
	}
	return err
}

// overQuota returns the 409 for storing adding more bytes for owner, whose
// documents take used, if that goes past the quota.
func (d Documents) overQuota(ctx context.Context, owner, used, adding int64) error {
	if d.QuotaBytes <= 0 || used+adding <= d.QuotaBytes {
		return nil
	}
	whose := "the owner's documents"
	if owner == access.Caller(ctx).UserID {
		whose = "your documents"
	}
	return problem.New(problem.Conflict, fmt.Sprintf(
		"Storing %d more bytes would take %s to %d bytes, over the quota of %d bytes (%d in use).",
		adding, whose, used+adding, d.QuotaBytes, used))
}

// storedFile is a PDF whose blob is written and whose row is not.
type storedFile struct {
	name  string
	key   string
	size  int64
	pages int
}

// insert adds the rows of files, whose blobs are written, in one short
// transaction that first checks the owner's quota. The owner's users row is
// locked (FOR NO KEY UPDATE) before the sum is read, so concurrent uploads
// and splits of one owner take their turns and together never pass the
// quota, and DeleteUser (FOR UPDATE on the same row) waits for them or they
// for it. The caller removes the blobs if insert fails.
func (d Documents) insert(ctx context.Context, owner int64, files []storedFile) ([]db.Document, error) {
	var adding int64
	for _, f := range files {
		adding += f.size
	}
	var rows []db.Document
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		n, err := q.LockDocumentOwner(ctx, owner)
		if err != nil {
			return err
		}
		if n == 0 && owner != access.Caller(ctx).UserID {
			return problem.New(problem.NotFound, documentNotFound) // gone with its owner; for the caller's own account the foreign key speaks
		}
		// A statement of its own, after the lock: it sees what the
		// transactions that held the lock before committed.
		used, err := q.SumDocumentBytes(ctx, owner)
		if err != nil {
			return err
		}
		if err := d.overQuota(ctx, owner, used, adding); err != nil {
			return err
		}
		for _, f := range files {
			row, err := q.CreateDocument(ctx, db.CreateDocumentParams{
				OwnerID: owner, FileName: f.name, SizeBytes: f.size, PageCount: int32(f.pages), BlobKey: f.key,
			})
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	return rows, nil
}

// removeBlobs deletes blobs whose rows are gone or were never committed; a
// failure is logged, since the blob is unreachable either way.
func removeBlobs(ctx context.Context, store *documents.Store, keys []string) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			httplog.Logger(ctx).Error("could not delete an unreferenced document blob", "key", k, "err", err)
		}
	}
}

func (d Documents) get(ctx context.Context, id int64) (db.Document, error) {
	row, err := d.Queries.GetDocument(ctx, db.GetDocumentParams{ID: id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx, seeAllDocuments)})
	return row, dberr.Translate(err, documentNotFound)
}

// GetDocument returns a document's metadata; another user's document is
// 404 as a missing one, except to an admin.
func (d Documents) GetDocument(ctx context.Context, req api.GetDocumentRequestObject) (api.GetDocumentResponseObject, error) {
	row, err := d.get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetDocument200JSONResponse(documentBody(row)), nil
}

// GetDocumentContent streams the PDF as an attachment that no cache keeps;
// 404 as GetDocument.
func (d Documents) GetDocumentContent(ctx context.Context, req api.GetDocumentContentRequestObject) (api.GetDocumentContentResponseObject, error) {
	row, err := d.get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	rc, size, err := d.Store.Get(ctx, row.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	return api.GetDocumentContent200ApplicationpdfResponse{Body: rc, ContentLength: size, Headers: api.GetDocumentContent200ResponseHeaders{
		ContentDisposition: contentDisposition(row.FileName),
		CacheControl:       "private, no-store", // a shared cache must not keep someone's document
	}}, nil
}

// DeleteDocument deletes a document and its bytes; 404 as GetDocument.
func (d Documents) DeleteDocument(ctx context.Context, req api.DeleteDocumentRequestObject) (api.DeleteDocumentResponseObject, error) {
	key, err := d.Queries.DeleteDocument(ctx, db.DeleteDocumentParams{ID: req.Id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx, seeAllDocuments)})
	if err != nil {
		return nil, dberr.Translate(err, documentNotFound)
	}
	// The row goes first: a blob left by a failure here is unreachable,
	// whereas a row without its blob would break reads.
	removeBlobs(ctx, d.Store, []string{key})
	return api.DeleteDocument204Response{}, nil
}

// ListDocuments returns a page of the caller's documents, newest first; an
// admin may list another user's with owner_id (403 for anyone else).
func (d Documents) ListDocuments(ctx context.Context, req api.ListDocumentsRequestObject) (api.ListDocumentsResponseObject, error) {
	items, next, err := ownedPage(ctx, seeAllDocuments, req.Params.OwnerId, req.Params.Cursor, req.Params.Limit,
		func(p ownedListParams) ([]db.Document, error) {
			return d.Queries.ListDocuments(ctx, db.ListDocumentsParams(p))
		},
		documentPosition, documentBody)
	if err != nil {
		return nil, err
	}
	return api.ListDocuments200JSONResponse{Items: items, NextCursor: next}, nil
}

// documentPosition is a document's place in its list: newest first.
func documentPosition(r db.Document) page.Cursor { return page.Cursor{At: r.CreatedAt.Time, ID: r.ID} }

// SplitDocument makes one new document per page, or per range given; 404 as
// GetDocument, 400 for a range outside the document or repeating or
// overlapping another, 422 past the work bounds or when the parts would
// take more than documents.MaxSplitGrowth times the source, 409 past the
// owner's quota, 429 or 503 with Retry-After when too many PDF operations
// run. Each part is written to the blob store as it is made; the rows go in
// at the end, in one transaction, and on any failure the parts' blobs are
// removed, so either every part is stored or none is.
func (d Documents) SplitDocument(ctx context.Context, req api.SplitDocumentRequestObject) (api.SplitDocumentResponseObject, error) {
	row, err := d.get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	var specs []string
	if req.Body != nil && req.Body.Ranges != nil {
		specs = *req.Body.Ranges
	}
	ranges, err := documents.ParseRanges(specs, int(row.PageCount))
	if err != nil {
		return nil, pdfError(err)
	}
	used, err := d.Queries.SumDocumentBytes(ctx, row.OwnerID)
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	// The slot first: a caller over the limit costs no read of the source.
	op, err := d.PDF.Begin(ctx, access.Caller(ctx).UserID)
	if err != nil {
		return nil, pdfError(err)
	}
	defer op.End()
	data, err := d.read(ctx, row)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(row.FileName, path.Ext(row.FileName))
	var (
		files   []storedFile
		written int64
	)
	err = op.Split(data, ranges, func(i int, pdf []byte) error {
		size := int64(len(pdf))
		if err := d.overQuota(ctx, row.OwnerID, used+written, size); err != nil {
			return err
		}
		key := documents.NewKey()
		if err := d.Store.Put(ctx, key, pdf); err != nil {
			return fmt.Errorf("storing part %d of document %d: %w", i, row.ID, err)
		}
		r := ranges[i]
		suffix := "-p" + strconv.Itoa(r.From)
		if r.To != r.From {
			suffix += "-" + strconv.Itoa(r.To)
		}
		files = append(files, storedFile{name: fileName(base + suffix + ".pdf"), key: key, size: size, pages: r.Pages()})
		written += size
		return nil
	})
	var rows []db.Document
	if err == nil {
		rows, err = d.insert(ctx, row.OwnerID, files)
	}
	if err != nil {
		keys := make([]string, len(files))
		for i, f := range files {
			keys[i] = f.key
		}
		removeBlobs(ctx, d.Store, keys)
		return nil, pdfError(err)
	}
	out := make(api.SplitDocument201JSONResponse, len(rows))
	for i, r := range rows {
		out[i] = documentBody(r)
	}
	return out, nil
}

// read returns the bytes of row's document, holding no more memory than
// their size.
func (d Documents) read(ctx context.Context, row db.Document) ([]byte, error) {
	rc, size, err := d.Store.Get(ctx, row.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	defer rc.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	return data, nil
}

// documentBody converts a row into the API's Document.
func documentBody(r db.Document) api.Document {
	return api.Document{
		Id:        r.ID,
		OwnerId:   r.OwnerID,
		FileName:  r.FileName,
		Size:      r.SizeBytes,
		PageCount: int(r.PageCount),
		CreatedAt: r.CreatedAt.Time,
	}
}
