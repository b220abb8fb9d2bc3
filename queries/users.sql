-- Queries of the users tag (handlers/users.go, package accounts): account and
-- role administration.

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

-- name: LockRole :exec
-- LockRole locks a role's row until the transaction ends, so that
-- transactions that could take the role from its last holder take turns.
SELECT 1 FROM roles WHERE name = sqlc.arg(name) FOR UPDATE;

-- name: IsEnabledHolder :one
-- IsEnabledHolder tells whether the account id exists, is enabled and holds
-- role.
SELECT EXISTS (
    SELECT 1 FROM users u
    JOIN user_roles ur ON ur.user_id = u.id
    JOIN roles r ON r.id = ur.role_id
    WHERE u.id = sqlc.arg(id) AND NOT u.disabled AND r.name = sqlc.arg(role)::text
) AS ok;

-- name: CountEnabledHolders :one
-- CountEnabledHolders counts the enabled accounts that hold role.
SELECT count(*) FROM users u
JOIN user_roles ur ON ur.user_id = u.id
JOIN roles r ON r.id = ur.role_id
WHERE r.name = sqlc.arg(role) AND NOT u.disabled;

-- name: LockUser :execrows
-- LockUser locks an account's row until the transaction ends, so that
-- nothing is added to the account while it is being deleted.
SELECT 1 FROM users WHERE id = sqlc.arg(id) FOR UPDATE;

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

-- name: CreateUser :one
-- CreateUser stores email as typed and canonical_email, its canonical form
-- (email.Canonical), under which it must be unique.
INSERT INTO users (email, canonical_email, password_hash)
VALUES (sqlc.arg(email), sqlc.arg(canonical_email)::text, sqlc.arg(password_hash))
RETURNING id, email, disabled, created_at, updated_at;

-- name: AnyUserExists :one
SELECT EXISTS (SELECT 1 FROM users);
