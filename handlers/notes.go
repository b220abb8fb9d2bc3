package handlers

import (
	"context"
	"strconv"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/problem"
)

// Notes implements the notes tag.
type Notes struct {
	Queries *db.Queries
}

// maxNotesByDocument bounds one listing of a document's notes.
const maxNotesByDocument = 1000

// CreateNote creates a note owned by the caller.
func (n Notes) CreateNote(ctx context.Context, req api.CreateNoteRequestObject) (api.CreateNoteResponseObject, error) {
	owner, err := ownerOf(ctx)
	if err != nil {
		return nil, err
	}
	row, err := n.Queries.CreateNote(ctx, db.CreateNoteParams{
		OwnerID:     owner,
		DocumentSrc: req.Body.DocumentSrc,
		Title:       req.Body.Title,
		Body:        req.Body.Body,
	})
	if err != nil {
		return nil, dberr.Translate(err, "")
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
		return nil, dberr.Translate(err, "")
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

// noteNotFound is the answer for a note that is missing or not the caller's.
const noteNotFound = "No such note."

// ListNotes returns a page of the caller's notes, newest first; an admin may
// list another user's with owner_id. Returns 403 when a non-admin asks for
// someone else's notes, 400 for a malformed cursor.
func (n Notes) ListNotes(ctx context.Context, req api.ListNotesRequestObject) (api.ListNotesResponseObject, error) {
	items, next, err := ownedPage(ctx, seeAllNotes, req.Params.OwnerId, req.Params.Cursor, req.Params.Limit,
		func(p ownedListParams) ([]db.Note, error) { return n.Queries.ListNotes(ctx, p) },
		notePosition, noteBody)
	if err != nil {
		return nil, err
	}
	return api.ListNotes200JSONResponse{Items: items, NextCursor: next}, nil
}

// notePosition is a note's place in its list: newest first.
func notePosition(r db.Note) page.Cursor { return page.Cursor{At: r.CreatedAt.Time, ID: r.ID} }

// GetNote returns a note of the caller's, or any note to an admin. Another
// user's note is 404, exactly as a missing one.
func (n Notes) GetNote(ctx context.Context, req api.GetNoteRequestObject) (api.GetNoteResponseObject, error) {
	row, err := n.Queries.GetNote(ctx, db.GetNoteParams{ID: req.Id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx, seeAllNotes)})
	if err != nil {
		return nil, dberr.Translate(err, noteNotFound)
	}
	return api.GetNote200JSONResponse(noteBody(row)), nil
}

// UpdateNote changes the given fields of a note the caller may see; 404 as
// GetNote.
func (n Notes) UpdateNote(ctx context.Context, req api.UpdateNoteRequestObject) (api.UpdateNoteResponseObject, error) {
	row, err := n.Queries.UpdateNote(ctx, db.UpdateNoteParams{
		ID:          req.Id,
		CallerID:    access.Caller(ctx).UserID,
		SeeAll:      seesAll(ctx, seeAllNotes),
		DocumentSrc: req.Body.DocumentSrc,
		Title:       req.Body.Title,
		Body:        req.Body.Body,
	})
	if err != nil {
		return nil, dberr.Translate(err, noteNotFound)
	}
	return api.UpdateNote200JSONResponse(noteBody(row)), nil
}

// DeleteNote deletes a note the caller may see; 404 as GetNote.
func (n Notes) DeleteNote(ctx context.Context, req api.DeleteNoteRequestObject) (api.DeleteNoteResponseObject, error) {
	deleted, err := n.Queries.DeleteNote(ctx, db.DeleteNoteParams{ID: req.Id, CallerID: access.Caller(ctx).UserID, SeeAll: seesAll(ctx, seeAllNotes)})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	if deleted == 0 {
		return nil, problem.New(problem.NotFound, noteNotFound)
	}
	return api.DeleteNote204Response{}, nil
}
