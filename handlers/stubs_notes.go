package handlers

// Temporary: operations not implemented yet answer 500. Delete with the last one.

import (
	"context"
	"errors"

	"github.com/rolegate/rolegate/gen/api"
)

func (Notes) ListNotes(context.Context, api.ListNotesRequestObject) (api.ListNotesResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Notes) DeleteNote(context.Context, api.DeleteNoteRequestObject) (api.DeleteNoteResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Notes) GetNote(context.Context, api.GetNoteRequestObject) (api.GetNoteResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Notes) UpdateNote(context.Context, api.UpdateNoteRequestObject) (api.UpdateNoteResponseObject, error) {
	return nil, errors.New("not implemented")
}
