-- Queries of signing keys (package keys).

-- name: ListSigningKeys :many
-- ListSigningKeys returns every key of a purpose (access or id tokens),
-- the newest to sign first.
SELECT kid, alg, public_key, private_key, created_at, active_at
FROM signing_keys
WHERE purpose = sqlc.arg(purpose)
ORDER BY active_at DESC, kid;

-- name: CreateSigningKey :exec
INSERT INTO signing_keys (kid, alg, public_key, private_key, created_at, active_at)
VALUES (sqlc.arg(kid), sqlc.arg(alg), sqlc.arg(public_key), sqlc.arg(private_key), sqlc.arg(created_at), sqlc.arg(active_at));

-- name: DeleteSigningKey :exec
DELETE FROM signing_keys WHERE kid = sqlc.arg(kid);

-- name: LockSigningKeys :exec
-- LockSigningKeys serialises rotations across replicas until the
-- transaction ends.
SELECT pg_advisory_xact_lock(4211834510924377433);
