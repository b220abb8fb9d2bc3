-- Queries of the users tag (handlers/users.go, package accounts): account and
-- role administration.

-- name: GetUserWithRoles :one
-- GetUserWithRoles returns a user and the names of all its roles (sorted,
-- empty when none) in one round trip.
SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                 WHERE ur.user_id = u.id), '{}')::text[] AS roles,
       (u.email_verified_at IS NOT NULL)::boolean AS email_verified
FROM users u
WHERE u.id = sqlc.arg(id);

-- name: ListUsersWithRoles :many
-- ListUsersWithRoles returns a page of users in id order after after_id
-- (0 for the first page), each with the sorted names of its roles.
SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                 WHERE ur.user_id = u.id), '{}')::text[] AS roles,
       (u.email_verified_at IS NOT NULL)::boolean AS email_verified
FROM users u
WHERE u.id > sqlc.arg(after_id)::bigint
ORDER BY u.id
LIMIT sqlc.arg(max_rows);

-- name: ListRoleHolders :many
-- ListRoleHolders is ListUsersWithRoles of only the holders of role: it
-- walks the role's grants in user id order (user_roles_role_user_idx) and
-- looks each holder of the page up by id, so that a page costs its rows,
-- however many accounts there are. The role's id is a scalar subquery, not
-- a join, so that no plan sorts the holders; the lookup is a LATERAL
-- subquery kept apart by OFFSET 0, so that no plan (a generic one guesses
-- how many hold the role) merges the grants with a walk of every account.
SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at,
       coalesce((SELECT array_agg(r.name ORDER BY r.name)
                 FROM user_roles ur2 JOIN roles r ON r.id = ur2.role_id
                 WHERE ur2.user_id = u.id), '{}')::text[] AS roles,
       (u.email_verified_at IS NOT NULL)::boolean AS email_verified
FROM user_roles ur
CROSS JOIN LATERAL (
    SELECT u.id, u.email, u.disabled, u.created_at, u.updated_at, u.email_verified_at
    FROM users u WHERE u.id = ur.user_id OFFSET 0
) u
WHERE ur.role_id = (SELECT r.id FROM roles r WHERE r.name = sqlc.arg(role)::text)
  AND ur.user_id > sqlc.arg(after_id)::bigint
ORDER BY ur.user_id
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

-- name: LockRole :one
-- LockRole locks a role's row until the transaction ends, so that
-- transactions that could take the role from its last holder take turns,
-- and returns its id. No row when there is no such role.
SELECT id FROM roles WHERE name = sqlc.arg(name) FOR UPDATE;

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
-- CountEnabledHolders counts the enabled accounts that hold the role of id
-- role_id. The id is a parameter, not a join on the role's name, so that
-- the plan is made knowing how many hold it: a role held by a few (admin)
-- is read through user_roles_role_user_idx, never by a scan of the users.
-- Each holder's account is a lookup by id.
SELECT count(*) FROM user_roles ur
WHERE ur.role_id = sqlc.arg(role_id)::bigint
  AND NOT (SELECT u.disabled FROM users u WHERE u.id = ur.user_id);

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
