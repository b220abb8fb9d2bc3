package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/documents"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/httplog"
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
}

var errDocumentNotFound = problem.New(problem.NotFound, "No such document.")

// UploadDocument stores the one PDF in the multipart field "file". Returns
// 415 for content that is not a PDF, 422 for a damaged PDF, 400 for a
// malformed upload; the middleware has already answered 413 for one over
// the limit.
func (d Documents) UploadDocument(ctx context.Context, req api.UploadDocumentRequestObject) (api.UploadDocumentResponseObject, error) {
	name, data, err := readUpload(req.Body)
	if err != nil {
		return nil, err
	}
	info, err := inspect(data)
	if err != nil {
		return nil, err
	}
	rows, err := d.store(ctx, access.Caller(ctx).UserID, []pdfFile{{name: name, data: data, pages: info.Pages}})
	if err != nil {
		return nil, err
	}
	return api.UploadDocument201JSONResponse{
		Body:    documentBody(rows[0]),
		Headers: api.UploadDocument201ResponseHeaders{Location: "/documents/" + strconv.FormatInt(rows[0].ID, 10)},
	}, nil
}

// readUpload reads the single "file" part of a multipart body.
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
			continue
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

// fileName keeps the base of a client's file name, without control
// characters, at most 255 bytes, ending in .pdf.
func fileName(s string) string {
	s = path.Base(strings.ReplaceAll(s, `\`, "/"))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
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

func inspect(data []byte) (documents.Info, error) {
	info, err := documents.Inspect(data)
	switch {
	case errors.Is(err, documents.ErrNotPDF):
		return info, problem.Wrap(problem.UnsupportedMedia, "The file is not a PDF.", err)
	case errors.Is(err, documents.ErrDamaged):
		return info, problem.Wrap(problem.Unprocessable, "The PDF is damaged or cannot be read.", err)
	case errors.Is(err, documents.ErrEncrypted):
		return info, problem.Wrap(problem.Unprocessable, "The PDF is encrypted.", err)
	case errors.Is(err, documents.ErrTooManyPages):
		return info, problem.Wrap(problem.Unprocessable, fmt.Sprintf("The PDF has more than %d pages.", documents.MaxPages), err)
	}
	return info, err
}

// pdfFile is a PDF about to be stored.
type pdfFile struct {
	name  string
	data  []byte
	pages int
}

// store writes the files' blobs and rows in one transaction: the rows are
// committed only after every blob is written, and the blobs are removed if
// anything fails, so that no row is ever without its blob and no failure
// leaves a blob behind.
func (d Documents) store(ctx context.Context, owner int64, files []pdfFile) ([]db.Document, error) {
	var keys []string
	var rows []db.Document
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		for _, f := range files {
			key := documents.NewKey()
			if err := d.Store.Put(ctx, key, f.data); err != nil {
				return fmt.Errorf("storing document bytes: %w", err)
			}
			keys = append(keys, key)
			row, err := q.CreateDocument(ctx, db.CreateDocumentParams{
				OwnerID: owner, FileName: f.name, SizeBytes: int64(len(f.data)), PageCount: int32(f.pages), BlobKey: key,
			})
			if err != nil {
				return dbError(err)
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		removeBlobs(ctx, d.Store, keys)
		return nil, err
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
	row, err := d.Queries.GetDocument(ctx, db.GetDocumentParams{ID: id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx)})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, errDocumentNotFound
	}
	return row, dbError(err)
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

// GetDocumentContent streams the PDF; 404 as GetDocument.
func (d Documents) GetDocumentContent(ctx context.Context, req api.GetDocumentContentRequestObject) (api.GetDocumentContentResponseObject, error) {
	row, err := d.get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	rc, size, err := d.Store.Get(ctx, row.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	return api.GetDocumentContent200ApplicationpdfResponse{Body: rc, ContentLength: size}, nil
}

// DeleteDocument deletes a document and its bytes; 404 as GetDocument.
func (d Documents) DeleteDocument(ctx context.Context, req api.DeleteDocumentRequestObject) (api.DeleteDocumentResponseObject, error) {
	key, err := d.Queries.DeleteDocument(ctx, db.DeleteDocumentParams{ID: req.Id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx)})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errDocumentNotFound
	}
	if err != nil {
		return nil, dbError(err)
	}
	// The row goes first: a blob left by a failure here is unreachable,
	// whereas a row without its blob would break reads.
	removeBlobs(ctx, d.Store, []string{key})
	return api.DeleteDocument204Response{}, nil
}

// ListDocuments returns a page of the caller's documents, newest first; an
// admin may list another user's with owner_id (403 for anyone else).
func (d Documents) ListDocuments(ctx context.Context, req api.ListDocumentsRequestObject) (api.ListDocumentsResponseObject, error) {
	owner, err := listOwner(ctx, req.Params.OwnerId)
	if err != nil {
		return nil, err
	}
	cur, after, err := parseTimeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := d.Queries.ListDocuments(ctx, db.ListDocumentsParams{
		OwnerID:        owner,
		After:          after,
		AfterCreatedAt: pgtype.Timestamptz{Time: cur.at, Valid: true},
		AfterID:        cur.id,
		MaxRows:        limit + 1,
	})
	if err != nil {
		return nil, dbError(err)
	}
	rows, next := trimPage(rows, limit, func(r db.Document) timeCursor { return timeCursor{r.CreatedAt.Time, r.ID} })
	page := api.ListDocuments200JSONResponse{Items: make([]api.Document, len(rows)), NextCursor: next}
	for i, r := range rows {
		page.Items[i] = documentBody(r)
	}
	return page, nil
}

// SplitDocument makes one new document per page, or per range given; 404 as
// GetDocument, 400 for a range outside the document.
func (d Documents) SplitDocument(ctx context.Context, req api.SplitDocumentRequestObject) (api.SplitDocumentResponseObject, error) {
	row, err := d.get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	rc, _, err := d.Store.Get(ctx, row.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("reading document %d: %w", row.ID, err)
	}
	var specs []string
	if req.Body != nil && req.Body.Ranges != nil {
		specs = *req.Body.Ranges
	}
	ranges, err := documents.ParseRanges(specs, int(row.PageCount))
	if err != nil {
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "A page range is outside the document's 1-" + strconv.Itoa(int(row.PageCount)) + ".",
			Fields: []api.FieldError{{Field: "body.ranges", Message: "outside the document"}}, Err: err}
	}
	parts, err := documents.Split(data, ranges)
	if err != nil {
		return nil, problem.Wrap(problem.Unprocessable, "The PDF cannot be split.", err)
	}
	base := strings.TrimSuffix(row.FileName, path.Ext(row.FileName))
	files := make([]pdfFile, len(parts))
	for i, p := range parts {
		r := ranges[i]
		suffix := "-p" + strconv.Itoa(r.From)
		if r.To != r.From {
			suffix += "-" + strconv.Itoa(r.To)
		}
		files[i] = pdfFile{name: fileName(base + suffix + ".pdf"), data: p, pages: r.To - r.From + 1}
	}
	rows, err := d.store(ctx, row.OwnerID, files)
	if err != nil {
		return nil, err
	}
	out := make(api.SplitDocument201JSONResponse, len(rows))
	for i, r := range rows {
		out[i] = documentBody(r)
	}
	return out, nil
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
