-- Queries of organizations (package orgs): organizations, the roles
-- created for them, their members, and the change log replicas follow. No
-- query here writes the log: the triggers of schema step 19 do, in the
-- transaction of the change.

-- name: CreateOrg :one
INSERT INTO orgs (slug, name, created_by)
VALUES (sqlc.arg(slug), sqlc.arg(name), sqlc.arg(created_by))
RETURNING id, slug, name, created_by, created_at;

-- name: GetOrg :one
SELECT id, slug, name, created_by, created_at FROM orgs WHERE id = sqlc.arg(id);

-- name: OrgExists :one
SELECT EXISTS (SELECT 1 FROM orgs WHERE id = sqlc.arg(id));

-- name: LockOrg :one
-- LockOrg locks an organization's row until the transaction ends, so that
-- transactions that could take the organization's last owner away take
-- turns, and returns its id. No row when there is no such organization.
SELECT id FROM orgs WHERE id = sqlc.arg(id) FOR UPDATE;

-- name: DeleteOrg :execrows
-- DeleteOrg deletes an organization; its roles and memberships go with it
-- (ON DELETE CASCADE), each membership logged.
DELETE FROM orgs WHERE id = sqlc.arg(id);

-- name: ListOrgsOfUser :many
-- ListOrgsOfUser returns the organizations an account is a member of, in
-- id order, after the id after_id (0 for the first page).
SELECT o.id, o.slug, o.name, o.created_by, o.created_at
FROM org_members m
JOIN orgs o ON o.id = m.org_id
WHERE m.user_id = sqlc.arg(user_id) AND m.org_id > sqlc.arg(after_id)
ORDER BY m.org_id
LIMIT sqlc.arg(max_rows);

-- name: ListOrgMembers :many
-- ListOrgMembers returns an organization's members in user id order,
-- after the id after_user_id (0 for the first page), with their emails.
SELECT m.user_id, u.email, m.roles, m.created_at, m.updated_at
FROM org_members m
JOIN users u ON u.id = m.user_id
WHERE m.org_id = sqlc.arg(org_id) AND m.user_id > sqlc.arg(after_user_id)
ORDER BY m.user_id
LIMIT sqlc.arg(max_rows);

-- name: GetOrgMemberRoles :one
-- GetOrgMemberRoles returns a member's roles in an organization; no row
-- when the account is not a member.
SELECT roles FROM org_members WHERE org_id = sqlc.arg(org_id) AND user_id = sqlc.arg(user_id);

-- name: UpsertOrgMember :exec
-- UpsertOrgMember makes an account a member of an organization with roles,
-- or replaces the roles of a member.
INSERT INTO org_members (org_id, user_id, roles)
VALUES (sqlc.arg(org_id), sqlc.arg(user_id), sqlc.arg(roles)::text[])
ON CONFLICT (org_id, user_id) DO UPDATE SET roles = EXCLUDED.roles, updated_at = now();

-- name: DeleteOrgMember :execrows
DELETE FROM org_members WHERE org_id = sqlc.arg(org_id) AND user_id = sqlc.arg(user_id);

-- name: OrgHasOwner :one
-- OrgHasOwner tells whether an organization has a member with the role
-- owner, through org_members_owner_idx (the condition is its predicate).
SELECT EXISTS (SELECT 1 FROM org_members WHERE org_id = sqlc.arg(org_id) AND 'owner' = ANY (roles));

-- name: CreateOrgRole :exec
INSERT INTO org_roles (org_id, name) VALUES (sqlc.arg(org_id), sqlc.arg(name));

-- name: CountOrgRoles :one
-- CountOrgRoles counts the roles created for an organization.
SELECT count(*) FROM org_roles WHERE org_id = sqlc.arg(org_id);

-- name: ListOrgRoles :many
-- ListOrgRoles returns the names of the roles created for an organization,
-- in order.
SELECT name FROM org_roles WHERE org_id = sqlc.arg(org_id) ORDER BY name;

-- name: FindOrgRoles :many
-- FindOrgRoles returns which of names are roles created for an
-- organization.
SELECT name FROM org_roles WHERE org_id = sqlc.arg(org_id) AND name = ANY (sqlc.arg(names)::text[]);

-- name: LastOrgChange :one
-- LastOrgChange returns the highest seq of the change log, 0 when it is
-- empty: where a replica that loads every membership starts following.
SELECT coalesce(max(seq), 0)::bigint AS seq FROM org_changes;

-- name: ListOrgChanges :many
-- ListOrgChanges returns the changes after seq, and those of the last 30
-- seconds again (a transaction may commit a lower seq after a higher one).
SELECT seq, org_id, user_id, kind
FROM org_changes
WHERE seq > sqlc.arg(after) OR created_at > now() - interval '30 seconds'
ORDER BY seq;

-- name: GetOrgMemberships :many
-- GetOrgMemberships returns the memberships among the pairs
-- (org_ids[i], user_ids[i]) that exist: a replica re-reads those the log
-- names.
SELECT m.org_id, m.user_id, m.roles
FROM (SELECT unnest(sqlc.arg(org_ids)::bigint[]) AS org_id, unnest(sqlc.arg(user_ids)::bigint[]) AS user_id) p
JOIN org_members m ON m.org_id = p.org_id AND m.user_id = p.user_id;

-- name: ListAllOrgMemberships :many
-- ListAllOrgMemberships returns every membership after the key (after_org,
-- after_user) in key order, a page at a time: a replica loading them all.
SELECT org_id, user_id, roles
FROM org_members
WHERE (org_id, user_id) > (sqlc.arg(after_org)::bigint, sqlc.arg(after_user)::bigint)
ORDER BY org_id, user_id
LIMIT sqlc.arg(max_rows);

-- name: DeleteOldOrgChanges :execrows
-- DeleteOldOrgChanges drops the changes logged before before.
DELETE FROM org_changes WHERE created_at < sqlc.arg(before);

-- name: LockOrgsOwnedBy :many
-- LockOrgsOwnedBy locks, in id order (so that two such transactions
-- cannot deadlock), the organizations an account is an owner of, as
-- LockOrg does one, before the account is deleted.
SELECT o.id FROM orgs o
WHERE o.id IN (SELECT m.org_id FROM org_members m WHERE m.user_id = sqlc.arg(user_id) AND 'owner' = ANY (m.roles))
ORDER BY o.id
FOR UPDATE;

-- name: OrgsOnlyOwnedBy :many
-- OrgsOnlyOwnedBy returns the organizations whose one owner the account
-- is.
SELECT m.org_id FROM org_members m
WHERE m.user_id = sqlc.arg(user_id) AND 'owner' = ANY (m.roles)
  AND NOT EXISTS (SELECT 1 FROM org_members o WHERE o.org_id = m.org_id AND o.user_id <> m.user_id AND 'owner' = ANY (o.roles))
ORDER BY m.org_id;

-- name: GetOrgBySlug :one
SELECT id, slug, name, created_by, created_at FROM orgs WHERE slug = sqlc.arg(slug);

-- name: FirstOrgChange :one
-- FirstOrgChange returns the lowest seq the change log still holds (0 for
-- an empty log): a position below it, less one, is no longer covered.
SELECT coalesce(min(seq), 0)::bigint FROM org_changes;
