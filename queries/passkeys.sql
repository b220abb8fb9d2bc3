-- Queries of passkeys (package passkey): accounts' user handles, their
-- WebAuthn credentials, and the ceremonies between options and answers.

-- name: EnsurePasskeyHandle :one
-- EnsurePasskeyHandle returns an account's user handle, storing handle as
-- it when the account has none yet: of two calls at once, both return the
-- one stored first.
INSERT INTO passkey_users (user_id, handle, created_at)
VALUES (sqlc.arg(user_id), sqlc.arg(handle), sqlc.arg(now))
ON CONFLICT (user_id) DO UPDATE SET handle = passkey_users.handle
RETURNING handle;

-- name: GetPasskeyHandle :one
-- GetPasskeyHandle returns an account's user handle; no row when it has
-- none.
SELECT handle FROM passkey_users WHERE user_id = sqlc.arg(user_id);

-- name: GetUserByPasskeyHandle :one
-- GetUserByPasskeyHandle returns the account whose user handle is handle;
-- no row when there is none.
SELECT user_id FROM passkey_users WHERE handle = sqlc.arg(handle);

-- name: ListPasskeyKeys :many
-- ListPasskeyKeys returns what a ceremony needs of an account's passkeys
-- for one relying party: their credential ids and public keys.
SELECT id, credential_id, public_key, sign_count, aaguid, transports, backup_eligible, backup_state
FROM passkeys
WHERE user_id = sqlc.arg(user_id) AND rp_id = sqlc.arg(rp_id)
ORDER BY id;

-- name: ListPasskeys :many
-- ListPasskeys returns an account's passkeys, of every relying party,
-- oldest first, without their keys.
SELECT id, name, aaguid, transports, backup_eligible, backup_state, created_at, last_used_at
FROM passkeys
WHERE user_id = sqlc.arg(user_id)
ORDER BY id;

-- name: CountPasskeys :one
SELECT count(*) FROM passkeys WHERE user_id = sqlc.arg(user_id);

-- name: HasPasskey :one
-- HasPasskey tells whether an account has a passkey for a relying party.
SELECT EXISTS (SELECT 1 FROM passkeys WHERE user_id = sqlc.arg(user_id) AND rp_id = sqlc.arg(rp_id));

-- name: CreatePasskey :one
-- CreatePasskey stores a new passkey; no row when its credential id is
-- registered already, to this account or another.
INSERT INTO passkeys (user_id, rp_id, credential_id, public_key, sign_count, aaguid, transports,
                      backup_eligible, backup_state, name, created_at)
VALUES (sqlc.arg(user_id), sqlc.arg(rp_id), sqlc.arg(credential_id), sqlc.arg(public_key), sqlc.arg(sign_count),
        sqlc.arg(aaguid), sqlc.arg(transports)::text[], sqlc.arg(backup_eligible), sqlc.arg(backup_state),
        sqlc.arg(name), sqlc.arg(now))
ON CONFLICT (credential_id) DO NOTHING
RETURNING id, created_at;

-- name: UsePasskey :one
-- UsePasskey records an accepted assertion of an account's passkey: its
-- signature counter, backup state and time. No row when the counter is not
-- greater than the one stored (unless both are 0), which an earlier
-- assertion, or one at the same time, may have raised.
UPDATE passkeys
SET sign_count = sqlc.arg(sign_count), backup_state = sqlc.arg(backup_state), last_used_at = sqlc.arg(now)
WHERE user_id = sqlc.arg(user_id) AND rp_id = sqlc.arg(rp_id) AND credential_id = sqlc.arg(credential_id)
  AND (passkeys.sign_count < sqlc.arg(sign_count) OR (passkeys.sign_count = 0 AND sqlc.arg(sign_count) = 0))
RETURNING id, name, aaguid, transports, backup_eligible, backup_state, created_at, last_used_at;

-- name: DeletePasskey :execrows
DELETE FROM passkeys WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id);

-- name: DeleteUserPasskeys :execrows
DELETE FROM passkeys WHERE user_id = sqlc.arg(user_id);

-- name: DeleteUserPasskeyCeremonies :exec
DELETE FROM passkey_ceremonies WHERE user_id = sqlc.arg(user_id);

-- name: CreatePasskeyCeremony :exec
INSERT INTO passkey_ceremonies (hash, user_id, kind, session_data, created_at, expires_at)
VALUES (sqlc.arg(hash), sqlc.narg(user_id), sqlc.arg(kind), sqlc.arg(session_data), sqlc.arg(created_at), sqlc.arg(expires_at));

-- name: UsePasskeyCeremony :one
-- UsePasskeyCeremony marks a live ceremony of a kind and an account (NULL
-- for a passwordless sign-in) used and returns its session data; no row
-- when there is no such ceremony, it expired, or another use came first.
UPDATE passkey_ceremonies SET used_at = sqlc.arg(now)
WHERE hash = sqlc.arg(hash) AND kind = sqlc.arg(kind) AND user_id IS NOT DISTINCT FROM sqlc.narg(user_id)
  AND used_at IS NULL AND expires_at > sqlc.arg(now)
RETURNING session_data;

-- name: DeleteOldPasskeyCeremonies :execrows
DELETE FROM passkey_ceremonies WHERE expires_at < sqlc.arg(before);
