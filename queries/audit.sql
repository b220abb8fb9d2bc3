-- Queries of the audit trail (package audit, handlers/audit.go).

-- name: InsertAuditEvent :exec
INSERT INTO audit_events (at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
                          client_addr, user_agent, request_id, operation_id)
VALUES (sqlc.arg(at), sqlc.arg(type), sqlc.narg(actor_user_id), sqlc.narg(actor_client_id), sqlc.narg(subject_user_id),
        sqlc.arg(subject), sqlc.arg(detail), sqlc.arg(client_addr), sqlc.arg(user_agent), sqlc.arg(request_id), sqlc.arg(operation_id));

-- name: ListAuditEvents :many
-- ListAuditEvents returns events newest first, after a keyset cursor
-- (at, id) when after is set, of one type and concerning one user (as actor
-- or subject) when those are set, within [since, until).
SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
FROM audit_events
WHERE (NOT sqlc.arg(after)::bool OR (at, id) < (sqlc.arg(after_at)::timestamptz, sqlc.arg(after_id)::bigint))
  AND (sqlc.narg(type)::text IS NULL OR type = sqlc.narg(type)::text)
  AND (sqlc.narg(user_id)::bigint IS NULL OR actor_user_id = sqlc.narg(user_id)::bigint OR subject_user_id = sqlc.narg(user_id)::bigint)
  AND (sqlc.narg(since)::timestamptz IS NULL OR at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR at < sqlc.narg(until)::timestamptz)
ORDER BY at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: DeleteOldAuditEvents :execrows
DELETE FROM audit_events WHERE at < sqlc.arg(before);
