-- Queries of the auth tag (handlers/auth.go): logging in and the caller's own
-- password.

-- name: GetUserWithRolesByCanonicalEmail :one
-- GetUserWithRolesByCanonicalEmail returns the user whose email has the
-- canonical form canonical_email (email.Canonical) and the names of all its
-- roles (sorted, empty when none) in one round trip.
SELECT u.id, u.email, u.password_hash, u.disabled, u.token_version, u.created_at, u.updated_at,
       coalesce(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL), '{}')::text[] AS roles,
       (u.email_verified_at IS NOT NULL)::boolean AS email_verified
FROM users u
LEFT JOIN user_roles ur ON ur.user_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
WHERE u.canonical_email = sqlc.arg(canonical_email)::text
GROUP BY u.id;

-- name: GetPasswordHash :one
-- GetPasswordHash returns an enabled account's password hash: no row for a
-- disabled or missing account.
SELECT password_hash FROM users WHERE id = sqlc.arg(id) AND NOT disabled;

-- name: UpdatePasswordHash :execrows
-- UpdatePasswordHash replaces a user's password hash if it is still old_hash,
-- so that a concurrent password change is never overwritten.
UPDATE users SET password_hash = sqlc.arg(new_hash), updated_at = now()
WHERE id = sqlc.arg(id) AND password_hash = sqlc.arg(old_hash);

-- name: ResetPasswordHash :one
-- ResetPasswordHash sets a user's password hash after a reset and, when
-- the mail went to the account's email as it still is, marks it verified;
-- no row when the account is gone or disabled.
UPDATE users SET password_hash = sqlc.arg(new_hash), updated_at = now(),
       email_verified_at = CASE WHEN email_verified_at IS NULL AND email = sqlc.arg(mailed_to) THEN now() ELSE email_verified_at END
WHERE id = sqlc.arg(id) AND NOT disabled
RETURNING id;

-- name: VerifyEmail :one
-- VerifyEmail marks a user's email verified when it is still mailed_to,
-- the address a verification mail went to; no row otherwise.
UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
WHERE id = sqlc.arg(id) AND email = sqlc.arg(mailed_to) AND NOT disabled
RETURNING id;

-- name: ChangeEmail :one
-- ChangeEmail moves a user to a new email (and its canonical form), proved
-- by a mail to it; no row when the account is gone or disabled. A new
-- address another account has fails on the unique index.
UPDATE users SET email = sqlc.arg(email), canonical_email = sqlc.arg(canonical_email),
       email_verified_at = now(), updated_at = now()
WHERE id = sqlc.arg(id) AND NOT disabled
RETURNING id;
