// Package dberr translates database errors into rolegate's error
// vocabulary (package problem), in one place, at the data boundary: by
// pgx's sentinel, SQLSTATE code and constraint name, never by message text.
package dberr

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/rolegate/rolegate/problem"
)

// Translate returns err as the client should hear of it:
//
//   - nil, and an error that already is a *problem.Error, as they are;
//   - no row (pgx.ErrNoRows) as a 404 whose detail is notFound, or, when
//     notFound is "", as an internal error: the row should have been there;
//   - a database that cannot be reached, is shutting down, is gone or
//     dropped the connection under a statement as a
//     503 with Retry-After, which clients may retry;
//   - a unique violation as a 409, naming what exists where the constraint
//     is known; text PostgreSQL cannot store and values out of range as a
//     400; a new row whose owner's account is gone as the 401 of a token
//     that outlived its account; another foreign key as a 409;
//   - anything else as it is: an internal error, logged and never shown.
func Translate(err error, notFound string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*problem.Error](err); ok {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if notFound == "" {
			return err
		}
		return problem.Wrap(problem.NotFound, notFound, err)
	}
	if unavailable(err) {
		return &problem.Error{Kind: problem.Unavailable, Detail: "The database is unavailable; retry shortly.",
			Header: http.Header{"Retry-After": {"5"}}, Err: err}
	}
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		detail, ok := exists[pgErr.ConstraintName]
		if !ok {
			detail = "It already exists."
		}
		return problem.Wrap(problem.Conflict, detail, err)
	case "23503": // foreign_key_violation
		if ownerGone[pgErr.ConstraintName] {
			return problem.InvalidToken("The access token's account no longer exists.", err)
		}
		return problem.Wrap(problem.Conflict, "It refers to something that no longer exists.", err)
	case "22021", "22P05": // character_not_in_repertoire, untranslatable_character (the gate refuses both first)
		return problem.Wrap(problem.Invalid, "Text must be valid UTF-8 without NUL characters.", err)
	case "22P02": // invalid_text_representation, e.g. a malformed uuid
		return problem.Wrap(problem.Invalid, "A value is malformed.", err)
	case "23514", "22001": // check_violation, string_data_right_truncation
		return problem.Wrap(problem.Invalid, "A value is out of range.", err)
	}
	return err
}

// exists names what a unique constraint's violation means.
var exists = map[string]string{
	"users_canonical_email_key": "An account with this email exists.",
	"roles_name_key":            "A role with this name exists.",
}

// ownerGone names the foreign keys from a caller's new row to the caller's
// account: violating one means the account was deleted while its token
// lives on.
var ownerGone = map[string]bool{"notes_owner_id_fkey": true, "documents_owner_id_fkey": true}

// unavailable reports whether err says the database could not be reached
// or is shutting down, as opposed to a fault in the request or in rolegate.
func unavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, new(*pgconn.ConnectError)), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, puddle.ErrClosedPool), errors.Is(err, context.DeadlineExceeded),
		// The connection dropped under a statement: the server went away.
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return pgErr.Code == "3D000" // invalid_catalog_name: the database is gone
	}
	return false
}
