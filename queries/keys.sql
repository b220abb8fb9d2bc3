-- Queries of signing keys (package keys).

-- name: ListSigningKeys :many
-- ListSigningKeys returns every key of a purpose (access or id tokens),
-- the newest to sign first.
SELECT kid, alg, public_key, private_key, created_at, active_at
FROM signing_keys
WHERE purpose = sqlc.arg(purpose)
ORDER BY active_at DESC, kid;

-- name: CreateSigningKey :exec
INSERT INTO signing_keys (kid, purpose, alg, public_key, private_key, created_at, active_at)
VALUES (sqlc.arg(kid), sqlc.arg(purpose), sqlc.arg(alg), sqlc.arg(public_key), sqlc.arg(private_key), sqlc.arg(created_at), sqlc.arg(active_at));

-- name: DeleteSigningKey :exec
DELETE FROM signing_keys WHERE kid = sqlc.arg(kid) AND purpose = sqlc.arg(purpose);

-- name: LockSigningKeys :exec
-- LockSigningKeys serialises the rotations of one purpose's keys across
-- replicas until the transaction ends, and never waits on the other
-- purpose's. The access keys keep the lock of the releases before id
-- tokens, so that replicas of both take turns during an upgrade.
SELECT pg_advisory_xact_lock(CASE sqlc.arg(purpose)::text
    WHEN 'access' THEN 4211834510924377433
    WHEN 'id' THEN 4211834510924377434
END);
