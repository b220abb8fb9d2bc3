package handlers

import (
	"context"
	"strconv"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
)

// Notes implements the notes tag.
type Notes struct {
	Queries *db.Queries
}

// maxNotesByDocument bounds one listing of a document's notes.
const maxNotesByDocument = 1000

// CreateNote creates a note owned by the caller.
func (n Notes) CreateNote(ctx context.Context, req api.CreateNoteRequestObject) (api.CreateNoteResponseObject, error) {
	row, err := n.Queries.CreateNote(ctx, db.CreateNoteParams{
		OwnerID:     access.Caller(ctx).UserID,
		DocumentSrc: req.Body.DocumentSrc,
		Title:       req.Body.Title,
		Body:        req.Body.Body,
	})
	if err != nil {
		return nil, dbError(err)
	}
	return api.CreateNote201JSONResponse{
		Body:    noteBody(row),
		Headers: api.CreateNote201ResponseHeaders{Location: "/notes/" + strconv.FormatInt(row.ID, 10)},
	}, nil
}

// ListNotesByDocument returns the caller's notes on one document, newest first.
func (n Notes) ListNotesByDocument(ctx context.Context, req api.ListNotesByDocumentRequestObject) (api.ListNotesByDocumentResponseObject, error) {
	rows, err := n.Queries.ListNotesByDocument(ctx, db.ListNotesByDocumentParams{
		OwnerID:     access.Caller(ctx).UserID,
		DocumentSrc: req.Src,
		MaxRows:     maxNotesByDocument,
	})
	if err != nil {
		return nil, dbError(err)
	}
	out := make(api.ListNotesByDocument200JSONResponse, len(rows))
	for i, r := range rows {
		out[i] = noteBody(r)
	}
	return out, nil
}

// noteBody converts a row into the API's Note.
func noteBody(r db.Note) api.Note {
	return api.Note{
		Id:          r.ID,
		OwnerId:     r.OwnerID,
		DocumentSrc: r.DocumentSrc,
		Title:       r.Title,
		Body:        r.Body,
		CreatedAt:   r.CreatedAt.Time,
		UpdatedAt:   r.UpdatedAt.Time,
	}
}
