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
