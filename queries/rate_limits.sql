-- Queries of login throttling (package throttle).

-- name: BlockedUntil :one
-- BlockedUntil returns the latest blocked_until of keys (NULL for none).
SELECT max(blocked_until)::timestamptz AS until FROM rate_limits WHERE key = ANY (sqlc.arg(keys)::text[]);

-- name: RecordFailure :one
-- RecordFailure counts a failure of key at now: a new window when the last
-- one is over, and, once the failures reach the limit, a block from now of
-- 2^(failures - limit) seconds, at most max_delay.
INSERT INTO rate_limits (key, failures, window_start, blocked_until)
VALUES (sqlc.arg(key), 1, sqlc.arg(now),
        CASE WHEN sqlc.arg(max_failures)::integer <= 1 THEN sqlc.arg(now)::timestamptz + interval '1 second' END)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN rate_limits.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval
                    THEN 1 ELSE rate_limits.failures + 1 END,
    window_start = CASE WHEN rate_limits.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval
                        THEN sqlc.arg(now)::timestamptz ELSE rate_limits.window_start END,
    blocked_until = CASE
        WHEN rate_limits.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval THEN NULL
        WHEN rate_limits.failures + 1 >= sqlc.arg(max_failures)::integer THEN
            sqlc.arg(now)::timestamptz + least(interval '1 second' * power(2, least(rate_limits.failures + 1 - sqlc.arg(max_failures)::integer, 20)),
                                               sqlc.arg(max_delay)::interval)
        ELSE rate_limits.blocked_until END
RETURNING failures, blocked_until;

-- name: ResetRateLimit :exec
DELETE FROM rate_limits WHERE key = sqlc.arg(key);

-- name: DeleteOldRateLimits :execrows
-- DeleteOldRateLimits drops keys whose window and block are both over.
DELETE FROM rate_limits
WHERE window_start < sqlc.arg(before) AND (blocked_until IS NULL OR blocked_until < sqlc.arg(now));
