-- name: GetUserWithRoles :one
-- GetUserWithRoles returns a user and the names of all its roles (sorted,
-- empty when none) in one round trip.
SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                 WHERE ur.user_id = u.id), '{}')::text[] AS roles
FROM users u
WHERE u.id = sqlc.arg(id);

-- name: ListUsersWithRoles :many
-- ListUsersWithRoles returns a page of users in id order after after_id
-- (0 for the first page), each with the sorted names of its roles, only
-- those holding role when role is set.
SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                 WHERE ur.user_id = u.id), '{}')::text[] AS roles
FROM users u
WHERE u.id > sqlc.arg(after_id)::bigint
  AND (sqlc.narg(role)::text IS NULL OR EXISTS (
        SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
        WHERE ur.user_id = u.id AND r.name = sqlc.narg(role)::text))
ORDER BY u.id
LIMIT sqlc.arg(max_rows);

-- name: GetPasswordHash :one
SELECT password_hash FROM users WHERE id = sqlc.arg(id);

-- name: SetUserDisabled :execrows
-- SetUserDisabled disables or enables a user; updated_at moves only when the
-- flag changes.
UPDATE users SET
    disabled   = sqlc.arg(disabled)::bool,
    updated_at = CASE WHEN disabled = sqlc.arg(disabled)::bool THEN updated_at ELSE now() END
WHERE id = sqlc.arg(id);

-- name: TouchUser :execrows
-- TouchUser marks a user as changed now, locking its row until the
-- transaction ends.
UPDATE users SET updated_at = now() WHERE id = sqlc.arg(id);

-- name: DeleteUserRoles :exec
DELETE FROM user_roles WHERE user_id = sqlc.arg(user_id);

-- name: DeleteUser :execrows
-- DeleteUser deletes a user; its roles and notes go with it (ON DELETE CASCADE).
DELETE FROM users WHERE id = sqlc.arg(id);

-- name: ListRoles :many
SELECT id, name, created_at FROM roles ORDER BY name;

-- name: CreateRole :one
INSERT INTO roles (name) VALUES (sqlc.arg(name))
RETURNING id, name, created_at;

-- name: DeleteRole :execrows
-- DeleteRole deletes a role; the grants of it go with it (ON DELETE CASCADE).
DELETE FROM roles WHERE name = sqlc.arg(name);
