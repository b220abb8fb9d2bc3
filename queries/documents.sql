-- name: CreateDocument :one
INSERT INTO documents (owner_id, file_name, size_bytes, page_count, blob_key)
VALUES (sqlc.arg(owner_id), sqlc.arg(file_name), sqlc.arg(size_bytes), sqlc.arg(page_count), sqlc.arg(blob_key))
RETURNING id, owner_id, file_name, size_bytes, page_count, blob_key, created_at;

-- name: GetDocument :one
-- GetDocument returns a document if the caller owns it or may see every document.
SELECT id, owner_id, file_name, size_bytes, page_count, blob_key, created_at
FROM documents
WHERE id = sqlc.arg(id) AND (owner_id = sqlc.arg(caller_id) OR sqlc.arg(see_all)::bool);

-- name: DeleteDocument :one
-- DeleteDocument deletes a document the caller may see and returns its blob key.
DELETE FROM documents
WHERE id = sqlc.arg(id) AND (owner_id = sqlc.arg(caller_id) OR sqlc.arg(see_all)::bool)
RETURNING blob_key;

-- name: ListDocuments :many
-- ListDocuments returns one owner's documents, newest first, before a
-- keyset cursor (created_at, id), as ListNotes does.
SELECT id, owner_id, file_name, size_bytes, page_count, blob_key, created_at
FROM documents
WHERE owner_id = sqlc.arg(owner_id)
  AND (created_at, id) < (sqlc.arg(before_created_at)::timestamptz, sqlc.arg(before_id)::bigint)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListUserBlobKeys :many
-- ListUserBlobKeys returns the blob keys of all of a user's documents.
SELECT blob_key FROM documents WHERE owner_id = sqlc.arg(owner_id);

-- name: LockDocumentOwner :execrows
-- LockDocumentOwner locks a user's row until the end of the transaction, so
-- that the user's document inserts (which check the quota first) happen one
-- at a time; FOR NO KEY UPDATE still lets other transactions insert rows
-- referencing the user, and conflicts with DeleteUser's FOR UPDATE. It
-- affects no row if the user is gone.
SELECT id FROM users WHERE id = sqlc.arg(id) FOR NO KEY UPDATE;

-- name: SumDocumentBytes :one
-- SumDocumentBytes returns the bytes a user's documents take.
SELECT coalesce(sum(size_bytes), 0)::bigint AS used FROM documents WHERE owner_id = sqlc.arg(owner_id);
