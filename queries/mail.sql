-- Queries of the mail outbox (package mail). Its times are the database's
-- clock, which every replica shares.

-- name: EnqueueMail :exec
-- EnqueueMail queues a mail, due at once, in the caller's transaction.
INSERT INTO mail_outbox (recipient, subject, text_body, html_body)
VALUES (sqlc.arg(recipient), sqlc.arg(subject), sqlc.arg(text_body), sqlc.arg(html_body));

-- name: LockMailRecipient :exec
-- LockMailRecipient takes the address's turn, case aside, for the rest of
-- the caller's transaction: an advisory lock of two keys, a space no other
-- lock of rolegate uses.
SELECT pg_advisory_xact_lock(1835100524, hashtext(lower(sqlc.arg(recipient)::text)));

-- name: CountRecentMail :one
-- CountRecentMail counts the mail queued to the address, case aside, in
-- the last hour.
SELECT count(*) FROM mail_outbox
WHERE lower(recipient) = lower(sqlc.arg(recipient)::text) AND created_at > now() - interval '1 hour';

-- name: ClaimMail :one
-- ClaimMail takes the earliest due mail that no other replica is taking
-- at this moment (SKIP LOCKED), counts the attempt and makes the mail due
-- again only after lease, so that no other replica takes it while this one
-- sends it; pgx.ErrNoRows when none is due. claimed_at is the database's
-- now.
UPDATE mail_outbox AS m
SET attempts = m.attempts + 1, next_attempt_at = now() + sqlc.arg(lease)::interval
FROM (
    SELECT id FROM mail_outbox
    WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
) AS due
WHERE m.id = due.id
RETURNING m.id, m.recipient, m.subject, m.text_body, m.html_body, m.created_at, m.attempts, m.last_error,
          now()::timestamptz AS claimed_at;

-- name: MarkMailSent :exec
-- MarkMailSent records that the mail server accepted mail id, and erases
-- its bodies.
UPDATE mail_outbox
SET sent_at = now(), failed_at = NULL, text_body = '', html_body = ''
WHERE id = sqlc.arg(id) AND sent_at IS NULL;

-- name: RetryMail :exec
-- RetryMail records why an attempt at mail id failed and makes it due
-- again after retry_in.
UPDATE mail_outbox
SET last_error = sqlc.arg(last_error), next_attempt_at = now() + sqlc.arg(retry_in)::interval
WHERE id = sqlc.arg(id) AND sent_at IS NULL AND failed_at IS NULL;

-- name: FailMail :exec
-- FailMail gives mail id up, recording why, and erases its bodies.
UPDATE mail_outbox
SET last_error = sqlc.arg(last_error), failed_at = now(), text_body = '', html_body = ''
WHERE id = sqlc.arg(id) AND sent_at IS NULL AND failed_at IS NULL;

-- name: DeleteEndedMail :execrows
-- DeleteEndedMail deletes the mail sent or given up more than retention
-- ago.
DELETE FROM mail_outbox
WHERE coalesce(sent_at, failed_at) < now() - sqlc.arg(retention)::interval;
