-- Queries of login throttling (package throttle).

-- name: BlockedUntil :one
-- BlockedUntil returns the latest blocked_until of keys (NULL for none).
SELECT max(blocked_until)::timestamptz AS until FROM rate_limits WHERE key = ANY (sqlc.arg(keys)::text[]);

-- name: ReserveAttempt :batchone
-- ReserveAttempt counts an attempt on key at now before it is made, as a
-- failure against its budget (max_failures in window_length): in a new
-- window when the key's last one is over; once the failures reach the
-- budget, the key is blocked from now for 2^(failures - budget) seconds,
-- at most max_delay, so that the attempts that come meanwhile are refused.
-- A budget of requests (to_window_end) is blocked instead until its
-- window ends. A key blocked at now is left as it is, and no row is returned: the
-- caller then rolls back the reservations of the attempt's other keys.
INSERT INTO rate_limits AS r (key, failures, window_start, blocked_until)
VALUES (sqlc.arg(key), 1, sqlc.arg(now),
        CASE WHEN sqlc.arg(max_failures)::integer <= 1 THEN
            CASE WHEN sqlc.arg(to_window_end)::boolean THEN sqlc.arg(now)::timestamptz + sqlc.arg(window_length)::interval
                 ELSE sqlc.arg(now)::timestamptz + interval '1 second' END END)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN r.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval
                    THEN 1 ELSE r.failures + 1 END,
    window_start = CASE WHEN r.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval
                        THEN sqlc.arg(now)::timestamptz ELSE r.window_start END,
    blocked_until = CASE
        WHEN r.window_start < sqlc.arg(now)::timestamptz - sqlc.arg(window_length)::interval THEN excluded.blocked_until
        WHEN r.failures + 1 >= sqlc.arg(max_failures)::integer AND sqlc.arg(to_window_end)::boolean THEN
            r.window_start + sqlc.arg(window_length)::interval
        WHEN r.failures + 1 >= sqlc.arg(max_failures)::integer THEN
            sqlc.arg(now)::timestamptz + least(interval '1 second' * power(2, least(r.failures + 1 - sqlc.arg(max_failures)::integer, 20)),
                                               sqlc.arg(max_delay)::interval)
        ELSE r.blocked_until END
WHERE r.blocked_until IS NULL OR r.blocked_until <= sqlc.arg(now)::timestamptz
RETURNING failures, window_start, blocked_until;

-- name: ReleaseAttempts :exec
-- ReleaseAttempts settles reservations that were no failure: the keys of
-- reset lose their whole count (an account's, after a success); each of
-- keys gives its attempt back if the window it was counted in is still
-- the key's (window_starts, of the same index): one failure fewer, and no
-- block when that leaves the key below its budget (max_failures), or when
-- the block is still the one the reservation left (blocked_untils), which
-- it set or found over.
WITH reset AS (
    DELETE FROM rate_limits WHERE key = ANY (sqlc.arg(reset)::text[])
), g AS (
    SELECT a.key, b.window_start, c.blocked_until, d.max_failures
    FROM unnest(sqlc.arg(keys)::text[]) WITH ORDINALITY AS a (key, i)
    JOIN unnest(sqlc.arg(window_starts)::timestamptz[]) WITH ORDINALITY AS b (window_start, i) USING (i)
    JOIN unnest(sqlc.arg(blocked_untils)::timestamptz[]) WITH ORDINALITY AS c (blocked_until, i) USING (i)
    JOIN unnest(sqlc.arg(max_failures)::integer[]) WITH ORDINALITY AS d (max_failures, i) USING (i)
)
UPDATE rate_limits AS r SET
    failures = r.failures - 1,
    blocked_until = CASE WHEN r.failures - 1 < g.max_failures OR r.blocked_until = g.blocked_until THEN NULL
                         ELSE r.blocked_until END
FROM g
WHERE r.key = g.key AND r.window_start = g.window_start AND r.failures > 0;

-- name: DeleteOldRateLimits :execrows
-- DeleteOldRateLimits drops keys whose window and block are both over.
DELETE FROM rate_limits
WHERE window_start < sqlc.arg(before) AND (blocked_until IS NULL OR blocked_until < sqlc.arg(now));
