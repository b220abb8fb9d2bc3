-- Queries of the audit trail (package audit, handlers/audit.go).

-- name: InsertAuditEvent :exec
INSERT INTO audit_events (at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
                          client_addr, user_agent, request_id, operation_id)
VALUES (sqlc.arg(at), sqlc.arg(type), sqlc.narg(actor_user_id), sqlc.narg(actor_client_id), sqlc.narg(subject_user_id),
        sqlc.arg(subject), sqlc.arg(detail), sqlc.arg(client_addr), sqlc.arg(user_agent), sqlc.arg(request_id), sqlc.arg(operation_id));

-- name: ListAuditEvents :many
-- ListAuditEvents returns events newest first, before a keyset cursor
-- (before_at, before_id), within [since, until), through
-- audit_events_at_idx. Every bound is always given (the handler passes
-- infinities for those the request leaves open) and each filter has a
-- query of its own (ListAuditEventsByType, ListAuditEventsByUser), so that
-- each has one plan, made for its index, whatever a prepared statement's
-- generic plan would guess: an optional filter written
-- "$1 IS NULL OR type = $1" can use no index.
SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
FROM audit_events
WHERE (at, id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::bigint)
  AND at >= sqlc.arg(since)::timestamptz AND at < sqlc.arg(until)::timestamptz
ORDER BY at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListAuditEventsByType :many
-- ListAuditEventsByType is ListAuditEvents of one type, through
-- audit_events_type_idx.
SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
FROM audit_events
WHERE type = sqlc.arg(type)::text
  AND (at, id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::bigint)
  AND at >= sqlc.arg(since)::timestamptz AND at < sqlc.arg(until)::timestamptz
ORDER BY at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListAuditEventsByUser :many
-- ListAuditEventsByUser is ListAuditEvents of the events concerning one
-- account, as actor or subject, and of one type when type is set: the
-- newest of each index (audit_events_actor_idx, audit_events_subject_user_idx),
-- merged; an event of which the account is both is taken from the first.
-- The type is a filter, not an index: one account's events are few.
SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
FROM (
    (SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
     FROM audit_events
     WHERE actor_user_id = sqlc.arg(user_id)::bigint
       AND (sqlc.narg(type)::text IS NULL OR type = sqlc.narg(type)::text)
       AND (at, id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::bigint)
       AND at >= sqlc.arg(since)::timestamptz AND at < sqlc.arg(until)::timestamptz
     ORDER BY at DESC, id DESC
     LIMIT sqlc.arg(max_rows))
    UNION ALL
    (SELECT id, at, type, actor_user_id, actor_client_id, subject_user_id, subject, detail,
       client_addr, user_agent, request_id, operation_id
     FROM audit_events
     WHERE subject_user_id = sqlc.arg(user_id)::bigint
       AND actor_user_id IS DISTINCT FROM sqlc.arg(user_id)::bigint
       AND (sqlc.narg(type)::text IS NULL OR type = sqlc.narg(type)::text)
       AND (at, id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::bigint)
       AND at >= sqlc.arg(since)::timestamptz AND at < sqlc.arg(until)::timestamptz
     ORDER BY at DESC, id DESC
     LIMIT sqlc.arg(max_rows))
) AS e
ORDER BY at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: DeleteOldAuditEvents :execrows
DELETE FROM audit_events WHERE at < sqlc.arg(before);
