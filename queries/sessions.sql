-- Queries of sessions (package sessions): logins, their refresh tokens, and
-- the revocation log that replicas follow.

-- name: CreateSession :one
-- CreateSession starts a session: of tokens (parent_id and client_id set
-- when a client's code exchange starts it under a browser session), or a
-- browser's (cookie_hash set).
INSERT INTO sessions (user_id, created_at, last_used_at, expires_at, user_agent, client_addr, scope,
                      client_id, parent_id, auth_time, cookie_hash, amr)
VALUES (sqlc.arg(user_id), sqlc.arg(now), sqlc.arg(now), sqlc.arg(expires_at), sqlc.arg(user_agent), sqlc.arg(client_addr), sqlc.narg(scope)::text[],
        sqlc.narg(client_id), sqlc.narg(parent_id), sqlc.narg(auth_time), sqlc.narg(cookie_hash), sqlc.narg(amr)::text[])
RETURNING id;

-- name: GetBrowserSession :one
-- GetBrowserSession returns the live browser session of a sign-in cookie,
-- with its account.
SELECT s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, coalesce(s.auth_time, s.created_at)::timestamptz AS auth_time,
       coalesce(s.amr, '{pwd}')::text[] AS amr, u.disabled
FROM sessions s
JOIN users u ON u.id = s.user_id
WHERE s.cookie_hash = sqlc.arg(cookie_hash) AND s.ended_at IS NULL;

-- name: LockLiveSession :one
-- LockLiveSession locks a session that has not ended, until the
-- transaction ends, and returns its id; no row when it has ended or is
-- none. A code exchange takes it on the browser session it starts a
-- session under, and an end on the session it ends, so that the two take
-- turns: the end then sees the session the exchange started.
SELECT id FROM sessions WHERE id = sqlc.arg(id) AND ended_at IS NULL FOR UPDATE;

-- name: CreateRefreshToken :exec
INSERT INTO refresh_tokens (hash, session_id, issued_at)
VALUES (sqlc.arg(hash), sqlc.arg(session_id), sqlc.arg(issued_at));

-- name: GetRefreshToken :one
-- GetRefreshToken returns a refresh token with its session, locking both
-- until the transaction ends, so that concurrent uses of one token take
-- turns and each sees what the one before did.
SELECT t.session_id, t.used_at, s.user_id, s.last_used_at, s.expires_at, s.ended_at, s.scope, s.client_id,
       coalesce(s.auth_time, s.created_at)::timestamptz AS auth_time, coalesce(s.amr, '{pwd}')::text[] AS amr
FROM refresh_tokens t
JOIN sessions s ON s.id = t.session_id
WHERE t.hash = sqlc.arg(hash)
FOR UPDATE;

-- name: GetUnusedRefreshToken :one
-- GetUnusedRefreshToken tells whether a refresh token of the session exists
-- and is not used yet.
SELECT EXISTS (
    SELECT 1 FROM refresh_tokens
    WHERE hash = sqlc.arg(hash) AND session_id = sqlc.arg(session_id) AND used_at IS NULL
) AS ok;

-- name: UseRefreshToken :exec
UPDATE refresh_tokens SET used_at = sqlc.arg(used_at) WHERE hash = sqlc.arg(hash);

-- name: TouchSession :exec
UPDATE sessions SET last_used_at = sqlc.arg(last_used_at) WHERE id = sqlc.arg(id);

-- name: GetSessionUser :one
-- GetSessionUser returns what a refreshed access token says of its user, as
-- it is now.
SELECT u.id, u.email, u.disabled, u.token_version,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                 WHERE ur.user_id = u.id), '{}')::text[] AS roles,
       (u.email_verified_at IS NOT NULL)::boolean AS email_verified
FROM users u
WHERE u.id = sqlc.arg(id);

-- name: EndSession :many
-- EndSession ends a live session and the live sessions started under it
-- (a browser session's), and returns their ids.
UPDATE sessions SET ended_at = sqlc.arg(ended_at)
WHERE (id = sqlc.arg(id) OR parent_id = sqlc.arg(id)) AND ended_at IS NULL
RETURNING id;

-- name: EndUserSession :many
-- EndUserSession ends one live session of user_id; no row when it is not
-- one.
UPDATE sessions SET ended_at = sqlc.arg(ended_at)
WHERE (id = sqlc.arg(id) OR parent_id = sqlc.arg(id)) AND user_id = sqlc.arg(user_id) AND ended_at IS NULL
RETURNING id;

-- name: EndUserSessions :many
-- EndUserSessions ends every live session of user_id but keep (which may be
-- NULL) and returns their ids.
UPDATE sessions SET ended_at = sqlc.arg(ended_at)
WHERE user_id = sqlc.arg(user_id) AND ended_at IS NULL
  AND (sqlc.narg(keep)::uuid IS NULL OR id <> sqlc.narg(keep)::uuid)
RETURNING id;

-- name: ListLiveSessions :many
-- ListLiveSessions returns the sessions of user_id that have not ended and
-- whose absolute and idle ends are after now, newest first.
SELECT id, created_at, last_used_at, expires_at, user_agent, client_addr
FROM sessions
WHERE user_id = sqlc.arg(user_id) AND ended_at IS NULL
  AND expires_at > sqlc.arg(now) AND last_used_at > sqlc.arg(idle_since)
ORDER BY created_at DESC, id
LIMIT 1000;

-- name: BumpTokenVersion :one
-- BumpTokenVersion raises a user's token version, so that access tokens
-- issued before are refused, and returns the new version.
UPDATE users SET token_version = token_version + 1 WHERE id = sqlc.arg(id)
RETURNING token_version;

-- name: LogSessionRevocation :one
INSERT INTO revocations (session_id, expires_at) VALUES (sqlc.arg(session_id), sqlc.arg(expires_at))
RETURNING seq;

-- name: LogUserRevocation :one
INSERT INTO revocations (user_id, min_version, expires_at)
VALUES (sqlc.arg(user_id), sqlc.arg(min_version), sqlc.arg(expires_at))
RETURNING seq;

-- name: LogClientRevocation :one
INSERT INTO revocations (client_id, min_version, expires_at)
VALUES (sqlc.arg(client_id), sqlc.arg(min_version), sqlc.arg(expires_at))
RETURNING seq;

-- name: LogTokenRevocation :one
INSERT INTO revocations (token_id, expires_at) VALUES (sqlc.arg(token_id), sqlc.arg(expires_at))
RETURNING seq;

-- name: RevokeRoleHolders :one
-- RevokeRoleHolders raises the token version of every account and every
-- machine client holding the role name, and logs for each a revocation of
-- its tokens older than that, kept until expires_at: for the role's
-- deletion, set-based whatever the number of holders. It returns the
-- highest seq logged, 0 when nobody holds the role.
WITH role AS (
    SELECT r.id FROM roles r WHERE r.name = sqlc.arg(name)
), bumped_users AS (
    UPDATE users u SET token_version = u.token_version + 1
    FROM user_roles ur, role
    WHERE ur.role_id = role.id AND ur.user_id = u.id
    RETURNING u.id, u.token_version
), bumped_clients AS (
    UPDATE clients c SET token_version = c.token_version + 1
    FROM client_roles cr, role
    WHERE cr.role_id = role.id AND cr.client_id = c.id
    RETURNING c.client_id, c.token_version
), logged AS (
    INSERT INTO revocations (user_id, client_id, min_version, expires_at)
    SELECT id, NULL::text, token_version, sqlc.arg(expires_at)::timestamptz FROM bumped_users
    UNION ALL
    SELECT NULL::bigint, client_id, token_version, sqlc.arg(expires_at)::timestamptz FROM bumped_clients
    RETURNING seq
)
SELECT coalesce(max(seq), 0)::bigint AS seq FROM logged;

-- name: NotifyRevocation :exec
-- NotifyRevocation tells every replica listening, once the transaction
-- commits, that the revocation log has grown to seq.
SELECT pg_notify('rolegate_revocations', sqlc.arg(seq)::bigint::text);

-- name: ListRevocations :many
-- ListRevocations returns the revocations after seq, and those of the last
-- few seconds again (a transaction may commit a lower seq after a higher
-- one), that are still of use at now.
SELECT seq, session_id, user_id, client_id, token_id, min_version, expires_at
FROM revocations
WHERE (seq > sqlc.arg(after) OR created_at > now() - interval '30 seconds')
  AND expires_at > sqlc.arg(now)
ORDER BY seq;

-- name: DeleteOldRevocations :execrows
-- DeleteOldRevocations drops revocations no token they concern outlived.
DELETE FROM revocations WHERE expires_at < sqlc.arg(before);

-- name: DeleteDeadSessions :execrows
-- DeleteDeadSessions drops sessions that ended, or expired absolutely or
-- idle, before before; their refresh tokens go with them (ON DELETE
-- CASCADE). The revocation log keeps what replicas still need.
DELETE FROM sessions
WHERE ended_at < sqlc.arg(before) OR expires_at < sqlc.arg(before) OR last_used_at < sqlc.arg(idle_before);

-- name: EndClientSessions :many
-- EndClientSessions ends every live session of tokens issued to a client
-- (the client is being deleted) and returns their ids.
UPDATE sessions SET ended_at = sqlc.arg(ended_at)
WHERE client_id = sqlc.arg(client_id) AND ended_at IS NULL
RETURNING id;

-- name: TouchBrowserSession :exec
-- TouchBrowserSession records a use of a browser session (a sign-in it
-- answered without the password), and when the password was entered
-- again for it (and how: amr).
UPDATE sessions SET last_used_at = sqlc.arg(now), auth_time = coalesce(sqlc.narg(auth_time), auth_time),
                    amr = coalesce(sqlc.narg(amr)::text[], amr)
WHERE id = sqlc.arg(id);
