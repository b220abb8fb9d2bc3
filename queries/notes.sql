-- name: CreateNote :one
INSERT INTO notes (owner_id, document_src, title, body)
VALUES (sqlc.arg(owner_id), sqlc.arg(document_src), sqlc.arg(title), sqlc.arg(body))
RETURNING id, owner_id, document_src, title, body, created_at, updated_at;

-- name: ListNotesByDocument :many
-- ListNotesByDocument returns one owner's notes on one document, newest first.
SELECT id, owner_id, document_src, title, body, created_at, updated_at
FROM notes
WHERE owner_id = sqlc.arg(owner_id) AND document_src = sqlc.arg(document_src)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: GetNote :one
-- GetNote returns a note if the caller owns it or may see every note.
SELECT id, owner_id, document_src, title, body, created_at, updated_at
FROM notes
WHERE id = sqlc.arg(id) AND (owner_id = sqlc.arg(caller_id) OR sqlc.arg(see_all)::bool);

-- name: UpdateNote :one
-- UpdateNote changes the given fields of a note the caller owns or may see.
UPDATE notes SET
    document_src = coalesce(sqlc.narg(document_src), document_src),
    title        = coalesce(sqlc.narg(title), title),
    body         = coalesce(sqlc.narg(body), body),
    updated_at   = now()
WHERE id = sqlc.arg(id) AND (owner_id = sqlc.arg(caller_id) OR sqlc.arg(see_all)::bool)
RETURNING id, owner_id, document_src, title, body, created_at, updated_at;

-- name: DeleteNote :execrows
DELETE FROM notes
WHERE id = sqlc.arg(id) AND (owner_id = sqlc.arg(caller_id) OR sqlc.arg(see_all)::bool);

-- name: ListNotes :many
-- ListNotes returns one owner's notes, newest first, before a keyset cursor
-- (created_at, id): ('infinity', the largest id) for the first page. The
-- cursor is always a bound, so that it is a condition of
-- notes_owner_created_idx and a deep page starts where it is, rather than a
-- filter over the owner's newer notes.
SELECT id, owner_id, document_src, title, body, created_at, updated_at
FROM notes
WHERE owner_id = sqlc.arg(owner_id)
  AND (created_at, id) < (sqlc.arg(before_created_at)::timestamptz, sqlc.arg(before_id)::bigint)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);
