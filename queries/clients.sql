-- Queries of the clients tag (handlers/clients.go): machine clients.

-- name: CreateClient :one
INSERT INTO clients (client_id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris)
VALUES (sqlc.arg(client_id), sqlc.arg(name), sqlc.narg(secret_hash), sqlc.arg(public),
        sqlc.arg(redirect_uris)::text[], sqlc.arg(post_logout_redirect_uris)::text[])
RETURNING id;

-- name: GrantClientRoles :exec
-- GrantClientRoles gives a client the named roles, which must exist.
INSERT INTO client_roles (client_id, role_id)
SELECT sqlc.arg(id), r.id FROM roles r WHERE r.name = ANY (sqlc.arg(names)::text[])
ON CONFLICT DO NOTHING;

-- name: GetClient :one
-- GetClient returns a client with the sorted names of its roles.
SELECT c.id, c.client_id, c.name, c.secret_hash, c.token_version, c.created_at, c.updated_at,
       c.public, c.redirect_uris, c.post_logout_redirect_uris,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM client_roles cr JOIN roles r ON r.id = cr.role_id
                 WHERE cr.client_id = c.id), '{}')::text[] AS roles
FROM clients c
WHERE c.client_id = sqlc.arg(client_id);

-- name: ListClients :many
-- ListClients returns a page of clients in id order after after_id (0 for
-- the first page), each with the sorted names of its roles.
SELECT c.id, c.client_id, c.name, c.created_at, c.updated_at,
       c.public, c.redirect_uris, c.post_logout_redirect_uris,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM client_roles cr JOIN roles r ON r.id = cr.role_id
                 WHERE cr.client_id = c.id), '{}')::text[] AS roles
FROM clients c
WHERE c.id > sqlc.arg(after_id)::bigint
ORDER BY c.id
LIMIT sqlc.arg(max_rows);

-- name: DeleteClient :execrows
DELETE FROM clients WHERE client_id = sqlc.arg(client_id);

-- name: SetClientSecret :one
-- SetClientSecret replaces a client's secret and raises its token version,
-- so that tokens issued before are refused; no row when there is no such
-- client.
UPDATE clients SET secret_hash = sqlc.arg(secret_hash), token_version = token_version + 1, updated_at = now()
WHERE client_id = sqlc.arg(client_id) AND NOT public
RETURNING token_version;
