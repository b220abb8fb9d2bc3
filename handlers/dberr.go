package handlers

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/problem"
)

// ownerGone names the foreign keys from a caller's new row to the caller's
// account: violating one means the account was deleted while its token
// lives on.
var ownerGone = map[string]bool{"notes_owner_id_fkey": true, "documents_owner_id_fkey": true}

// dbError translates a database error into the error vocabulary, once, at
// the data boundary: SQLSTATE codes, never message text.
func dbError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return problem.Wrap(problem.NotFound, "No such resource.", err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return problem.Wrap(problem.Conflict, "It already exists.", err)
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character (the edge refuses both first)
			return problem.Wrap(problem.Invalid, "Text must be valid UTF-8 without NUL characters.", err)
		case "23503": // foreign_key_violation
			if ownerGone[pgErr.ConstraintName] {
				return access.InvalidToken("The access token's account no longer exists.", err)
			}
			return problem.Wrap(problem.Conflict, "It refers to something that no longer exists.", err)
		case "23514", "22001": // check_violation, string_data_right_truncation
			return problem.Wrap(problem.Invalid, "A value is out of range.", err)
		}
	}
	return err
}
