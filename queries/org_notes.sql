-- Queries of an organization's notes (handlers).

-- name: CreateOrgNote :one
INSERT INTO org_notes (org_id, author_id, document_src, title, body)
VALUES (sqlc.arg(org_id), sqlc.arg(author_id), sqlc.arg(document_src), sqlc.arg(title), sqlc.arg(body))
RETURNING id, org_id, author_id, document_src, title, body, created_at, updated_at;

-- name: ListOrgNotes :many
-- ListOrgNotes returns an organization's notes, newest first, before a
-- keyset cursor (created_at, id), as ListNotes does a person's.
SELECT id, org_id, author_id, document_src, title, body, created_at, updated_at
FROM org_notes
WHERE org_id = sqlc.arg(org_id)
  AND (created_at, id) < (sqlc.arg(before_created_at)::timestamptz, sqlc.arg(before_id)::bigint)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: GetOrgNote :one
SELECT id, org_id, author_id, document_src, title, body, created_at, updated_at
FROM org_notes
WHERE id = sqlc.arg(id) AND org_id = sqlc.arg(org_id);

-- name: UpdateOrgNote :one
-- UpdateOrgNote changes the given fields of a note of the organization,
-- when the caller may change any of its notes (any_note) or wrote it.
UPDATE org_notes SET
    document_src = coalesce(sqlc.narg(document_src), document_src),
    title        = coalesce(sqlc.narg(title), title),
    body         = coalesce(sqlc.narg(body), body),
    updated_at   = now()
WHERE id = sqlc.arg(id) AND org_id = sqlc.arg(org_id) AND (author_id = sqlc.arg(caller_id) OR sqlc.arg(any_note)::bool)
RETURNING id, org_id, author_id, document_src, title, body, created_at, updated_at;

-- name: DeleteOrgNote :execrows
DELETE FROM org_notes
WHERE id = sqlc.arg(id) AND org_id = sqlc.arg(org_id) AND (author_id = sqlc.arg(caller_id) OR sqlc.arg(any_note)::bool);
