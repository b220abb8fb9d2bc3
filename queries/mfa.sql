-- Queries of second factors (package mfa): TOTP authenticators, recovery
-- codes, and the challenges of sign-ins waiting for a second factor.

-- name: StartTOTPEnrolment :one
-- StartTOTPEnrolment stores a pending TOTP secret for an account,
-- replacing a pending one; no row when the account's TOTP is active.
INSERT INTO mfa_totp (user_id, secret, created_at)
VALUES (sqlc.arg(user_id), sqlc.arg(secret), sqlc.arg(now))
ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, last_step = 0
    WHERE mfa_totp.confirmed_at IS NULL
RETURNING user_id;

-- name: GetPendingTOTP :one
-- GetPendingTOTP returns the sealed secret of an account's pending TOTP;
-- no row when there is none.
SELECT secret FROM mfa_totp WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NULL;

-- name: ConfirmTOTP :execrows
-- ConfirmTOTP activates an account's pending TOTP, if it still has the
-- secret the code was checked against, and records the step of that code.
UPDATE mfa_totp SET confirmed_at = sqlc.arg(now), last_step = sqlc.arg(step)
WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NULL AND secret = sqlc.arg(secret);

-- name: GetActiveTOTP :one
-- GetActiveTOTP returns the sealed secret of an account's active TOTP and
-- the last step accepted; no row when there is none.
SELECT secret, last_step FROM mfa_totp WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NOT NULL;

-- name: AcceptTOTPStep :execrows
-- AcceptTOTPStep records that a code of step was accepted, unless one of
-- that step or a later one was: of two uses of a code at once, the second
-- waits for the first's row lock and then changes no row.
UPDATE mfa_totp SET last_step = sqlc.arg(step)
WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NOT NULL AND last_step < sqlc.arg(step);

-- name: DeleteTOTP :execrows
DELETE FROM mfa_totp WHERE user_id = sqlc.arg(user_id);

-- name: GetTOTPConfirmedAt :one
-- GetTOTPConfirmedAt returns when an account's active TOTP was confirmed;
-- no row when there is none.
SELECT confirmed_at::timestamptz FROM mfa_totp WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NOT NULL;

-- name: HasSecondFactor :one
-- HasSecondFactor tells whether an account has an active second factor.
SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NOT NULL);

-- name: DeleteRecoveryCodes :execrows
DELETE FROM mfa_recovery_codes WHERE user_id = sqlc.arg(user_id);

-- name: CreateRecoveryCodes :exec
INSERT INTO mfa_recovery_codes (user_id, hash, created_at)
SELECT sqlc.arg(user_id), h, sqlc.arg(now) FROM unnest(sqlc.arg(hashes)::bytea[]) AS h;

-- name: UseRecoveryCode :execrows
-- UseRecoveryCode marks an account's unused recovery code used: of two
-- uses at once, the second waits for the first's row lock and then changes
-- no row.
UPDATE mfa_recovery_codes SET used_at = sqlc.arg(now)
WHERE user_id = sqlc.arg(user_id) AND hash = sqlc.arg(hash) AND used_at IS NULL;

-- name: CountRecoveryCodesLeft :one
SELECT count(*) FROM mfa_recovery_codes WHERE user_id = sqlc.arg(user_id) AND used_at IS NULL;

-- name: CreateMFAChallenge :exec
INSERT INTO mfa_challenges (hash, user_id, amr, scope, client_id, user_agent, client_addr, created_at, expires_at)
VALUES (sqlc.arg(hash), sqlc.arg(user_id), sqlc.arg(amr)::text[], sqlc.narg(scope)::text[], sqlc.narg(client_id),
        sqlc.arg(user_agent), sqlc.arg(client_addr), sqlc.arg(created_at), sqlc.arg(expires_at));

-- name: GetMFAChallenge :one
-- GetMFAChallenge returns a live challenge: not used, not expired, and
-- with fewer than max_failures wrong codes; no row otherwise.
SELECT user_id, amr, scope, client_id, user_agent, client_addr, failures, created_at, expires_at
FROM mfa_challenges
WHERE hash = sqlc.arg(hash) AND used_at IS NULL AND expires_at > sqlc.arg(now) AND failures < sqlc.arg(max_failures);

-- name: FailMFAChallenge :one
-- FailMFAChallenge counts a wrong code against a live challenge and
-- returns the count; no row when it is not live.
UPDATE mfa_challenges SET failures = failures + 1
WHERE hash = sqlc.arg(hash) AND used_at IS NULL AND expires_at > sqlc.arg(now) AND failures < sqlc.arg(max_failures)
RETURNING failures;

-- name: UseMFAChallenge :one
-- UseMFAChallenge marks a live challenge used and returns it; no row when
-- it is not live, or another use came first.
UPDATE mfa_challenges SET used_at = sqlc.arg(now)
WHERE hash = sqlc.arg(hash) AND used_at IS NULL AND expires_at > sqlc.arg(now) AND failures < sqlc.arg(max_failures)
RETURNING user_id, amr, scope, client_id, user_agent, client_addr, failures, created_at, expires_at;

-- name: DeleteUserMFAChallenges :exec
-- DeleteUserMFAChallenges voids an account's pending sign-ins: after its
-- second factors change, a sign-in starts again.
DELETE FROM mfa_challenges WHERE user_id = sqlc.arg(user_id);

-- name: DeleteOldMFAChallenges :execrows
DELETE FROM mfa_challenges WHERE expires_at < sqlc.arg(before);
