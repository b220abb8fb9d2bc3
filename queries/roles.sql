-- name: EnsureRoles :exec
-- EnsureRoles creates the named roles that do not exist yet.
INSERT INTO roles (name)
SELECT unnest(sqlc.arg(names)::text[])
ON CONFLICT (name) DO NOTHING;

-- name: GrantRoles :exec
-- GrantRoles gives a user the named roles, which must exist; granting one it holds is no error.
INSERT INTO user_roles (user_id, role_id)
SELECT sqlc.arg(user_id), r.id FROM roles r WHERE r.name = ANY (sqlc.arg(names)::text[])
ON CONFLICT DO NOTHING;

-- name: ListUserRoles :many
SELECT r.name FROM roles r JOIN user_roles ur ON ur.role_id = r.id
WHERE ur.user_id = sqlc.arg(user_id)
ORDER BY r.name;
