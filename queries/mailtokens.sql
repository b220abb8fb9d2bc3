-- Queries of the tokens in mails (package mailtoken).

-- name: VoidMailTokens :exec
-- VoidMailTokens deletes the unused tokens of an account and purpose: a
-- newer one replaces them.
DELETE FROM mail_tokens WHERE user_id = sqlc.arg(user_id) AND purpose = sqlc.arg(purpose) AND used_at IS NULL;

-- name: CreateMailToken :exec
INSERT INTO mail_tokens (hash, user_id, purpose, email, created_at, expires_at)
VALUES (sqlc.arg(hash), sqlc.arg(user_id), sqlc.arg(purpose), sqlc.arg(email), sqlc.arg(created_at), sqlc.arg(expires_at));

-- name: UseMailToken :one
-- UseMailToken marks a live token of a purpose used and returns it, or no
-- row when it is unknown, of another purpose, used or expired.
UPDATE mail_tokens SET used_at = sqlc.arg(now)
WHERE hash = sqlc.arg(hash) AND purpose = sqlc.arg(purpose) AND used_at IS NULL AND expires_at > sqlc.arg(now)
RETURNING user_id, email;

-- name: DeleteOldMailTokens :execrows
DELETE FROM mail_tokens WHERE expires_at < sqlc.arg(before);
