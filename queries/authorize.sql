-- Queries of the authorization endpoint (package authorize): one-use codes.

-- name: CreateAuthorizationCode :exec
INSERT INTO authorization_codes (hash, client_id, user_id, browser_session_id, redirect_uri, code_challenge, scope, nonce, auth_time, created_at, expires_at, amr)
VALUES (sqlc.arg(hash), sqlc.arg(client_id), sqlc.arg(user_id), sqlc.arg(browser_session_id), sqlc.arg(redirect_uri),
        sqlc.arg(code_challenge), sqlc.arg(scope)::text[], sqlc.narg(nonce), sqlc.arg(auth_time), sqlc.arg(created_at), sqlc.arg(expires_at), sqlc.arg(amr)::text[]);

-- name: GetAuthorizationCode :one
-- GetAuthorizationCode returns a code, locked until the transaction ends,
-- so that two exchanges of one code take turns and the second sees the
-- first's use.
SELECT c.hash, c.client_id, c.user_id, c.browser_session_id, c.redirect_uri, c.code_challenge, c.scope, c.nonce,
       c.auth_time, c.created_at, c.expires_at, c.used_at, c.session_id, coalesce(c.amr, '{pwd}')::text[] AS amr
FROM authorization_codes c
WHERE c.hash = sqlc.arg(hash)
FOR UPDATE;

-- name: UseAuthorizationCode :exec
UPDATE authorization_codes SET used_at = sqlc.arg(used_at), session_id = sqlc.narg(session_id)
WHERE hash = sqlc.arg(hash);

-- name: DeleteOldAuthorizationCodes :execrows
-- DeleteOldAuthorizationCodes drops codes that expired before before: a
-- used one presented again after that is only unknown.
DELETE FROM authorization_codes WHERE expires_at < sqlc.arg(before);
