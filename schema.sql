-- rolegate's database schema: the one source for sqlc and for every database
-- rolegate runs on.
--
-- It is applied at start-up in numbered steps, each in the same transaction as
-- its bookkeeping row in schema_steps, under a PostgreSQL advisory lock, so
-- that replicas starting together apply each step exactly once. A step that
-- has been released is never edited: change the schema by appending a new
-- "-- +step N: what" section below the last one. Steps never drop data.

-- +step 1: users, roles and notes
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text        NOT NULL,
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE users IS 'Accounts that log in at /token.';
COMMENT ON COLUMN users.email IS 'Login name; unique regardless of case.';
COMMENT ON COLUMN users.password_hash IS 'A PHC string (argon2id), or a bcrypt hash imported from another app.';
COMMENT ON COLUMN users.disabled IS 'A disabled user cannot log in.';

-- Emails are unique and looked up case-insensitively.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE roles (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE roles IS 'Role names that x-roles in the API spec refers to.';

CREATE TABLE user_roles (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
COMMENT ON TABLE user_roles IS 'Which user holds which role (many to many).';

CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

CREATE TABLE notes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_src text        NOT NULL,
    title        text        NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE notes IS 'Notes a user keeps about a document.';
COMMENT ON COLUMN notes.document_src IS 'The source of the document the note is about.';

-- A user's notes for one document source, newest first.
CREATE INDEX notes_owner_document_idx ON notes (owner_id, document_src, created_at DESC, id DESC);
-- A user's notes, newest first (keyset pagination).
CREATE INDEX notes_owner_created_idx ON notes (owner_id, created_at DESC, id DESC);

-- +step 2: documents
CREATE TABLE documents (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id   bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_name  text        NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    size_bytes bigint      NOT NULL CHECK (size_bytes > 0),
    page_count integer     NOT NULL CHECK (page_count > 0),
    blob_key   text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE documents IS 'PDF documents; their bytes live in the blob bucket under blob_key.';

-- A user's documents, newest first (keyset pagination).
CREATE INDEX documents_owner_created_idx ON documents (owner_id, created_at DESC, id DESC);

-- +step 3: canonical emails
-- An account's email is unique, and found at login, by its canonical form
-- (package email), computed in Go: lower() depends on the locale, folds
-- ALİCE into alice and lets look-alikes and invisible characters through.
-- Step 3's Go hook (accounts.AssignCanonicalEmails) fills the column for
-- existing rows and reports, rather than merges, those it cannot fill.
ALTER TABLE users ADD COLUMN canonical_email text;
COMMENT ON COLUMN users.email IS 'Login name as the user typed it, and as the API shows it.';
COMMENT ON COLUMN users.canonical_email IS 'Canonical form of email (package email), unique. NULL only for accounts that step 3 reported; they cannot log in.';
CREATE UNIQUE INDEX users_canonical_email_key ON users (canonical_email);
DROP INDEX users_email_key;

-- +step 4: sessions and revocations
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 1;
COMMENT ON COLUMN users.token_version IS 'Access tokens carry the version current when they were issued (ver); a change that must reach tokens already issued (roles, disabling) raises it, and older tokens are refused.';

CREATE TABLE sessions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    user_agent   text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    client_addr  text        NOT NULL DEFAULT '' CHECK (length(client_addr) <= 64),
    scope        text[],
    ended_at     timestamptz
);
COMMENT ON TABLE sessions IS 'A login and the refresh tokens that keep it alive; access tokens carry its id (sid).';
COMMENT ON COLUMN sessions.expires_at IS 'Absolute end (ROLEGATE_SESSION_TTL after the login); the idle end is last_used_at + ROLEGATE_REFRESH_TOKEN_TTL.';
COMMENT ON COLUMN sessions.scope IS 'The roles the login asked for (scope); NULL for all the account holds. A refresh grants at most these.';
COMMENT ON COLUMN sessions.ended_at IS 'When the session was ended (logout, revocation, reuse of a refresh token, an administrator); NULL while it lives.';
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

CREATE TABLE refresh_tokens (
    hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    used_at    timestamptz
);
COMMENT ON TABLE refresh_tokens IS 'Every refresh token a session was given, by the SHA-256 of the token (never the token): the one not used yet is current; one used again, outside the reuse window, ends its session.';
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE revocations (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  uuid,
    user_id     bigint,
    client_id   text,
    min_version bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK (num_nonnulls(session_id, user_id, client_id) = 1),
    CHECK ((session_id IS NULL) = (min_version IS NOT NULL))
);
COMMENT ON TABLE revocations IS 'The change log replicas follow (by seq, and through NOTIFY rolegate_revocations) to refuse access tokens at once: an ended session, or a user''s or a machine client''s tokens older than min_version. A row is of no use after expires_at, when every token it concerns has expired.';
CREATE INDEX revocations_expires_idx ON revocations (expires_at);

-- +step 5: signing keys
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    alg         text        NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    public_key  bytea       NOT NULL,
    private_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    active_at   timestamptz NOT NULL
);
COMMENT ON TABLE signing_keys IS 'Keys that sign access tokens. A key is published in the JWKS from created_at, signs from active_at until the next key is active, and stays published until every token it signed has expired; then it is deleted.';
COMMENT ON COLUMN signing_keys.public_key IS 'The public key, PKIX DER.';
COMMENT ON COLUMN signing_keys.private_key IS 'The private key, PKCS #8 DER, sealed with AES-256-GCM under ROLEGATE_MASTER_KEY (nonce first; the kid is the additional data).';
CREATE INDEX signing_keys_active_idx ON signing_keys (active_at);

-- +step 6: machine clients
CREATE TABLE clients (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id     text        NOT NULL UNIQUE CHECK (length(client_id) BETWEEN 1 AND 64),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash   bytea       NOT NULL CHECK (length(secret_hash) = 32),
    token_version bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE clients IS 'Programs that get tokens with the client credentials grant (RFC 6749 section 4.4), holding roles as accounts do.';
COMMENT ON COLUMN clients.secret_hash IS 'SHA-256 of the client secret, 256 random bits shown once: a fast hash suffices for a secret of that entropy.';
COMMENT ON COLUMN clients.token_version IS 'As users.token_version: raised when the secret is replaced, so that tokens issued before are refused.';

CREATE TABLE client_roles (
    client_id bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    role_id   bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, role_id)
);
COMMENT ON TABLE client_roles IS 'Which client holds which role.';

-- +step 7: login throttling
CREATE TABLE rate_limits (
    key           text        PRIMARY KEY CHECK (length(key) <= 400),
    failures      integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    blocked_until timestamptz
);
COMMENT ON TABLE rate_limits IS 'Failure budgets of operations that declare x-rate-limit, shared by every replica: failures since window_start, per client address or account; past the budget, the key is refused until blocked_until, a delay that doubles with every further failure.';
CREATE INDEX rate_limits_window_idx ON rate_limits (window_start);

-- +step 8: audit trail
CREATE TABLE audit_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    type            text        NOT NULL,
    actor_user_id   bigint,
    actor_client_id text,
    subject_user_id bigint,
    subject         text        NOT NULL DEFAULT '',
    detail          text        NOT NULL DEFAULT '',
    client_addr     text        NOT NULL DEFAULT '',
    user_agent      text        NOT NULL DEFAULT '',
    request_id      text        NOT NULL DEFAULT '',
    operation_id    text        NOT NULL DEFAULT ''
);
COMMENT ON TABLE audit_events IS 'Append-only record of logins, sessions, tokens and account changes; kept ROLEGATE_AUDIT_RETENTION. Never a password, token or secret.';
COMMENT ON COLUMN audit_events.actor_user_id IS 'The account that acted (NULL for a machine client, or nobody yet, as a failed login).';
COMMENT ON COLUMN audit_events.subject_user_id IS 'The account the event concerns, when it is one.';
COMMENT ON COLUMN audit_events.subject IS 'What the event concerns, e.g. user:42, client:cl_..., session:<id>, role:auditor, key:<kid>, or the email a login named.';
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_type_idx ON audit_events (type, at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id, at DESC, id DESC);
CREATE INDEX audit_events_subject_user_idx ON audit_events (subject_user_id, at DESC, id DESC);

-- +step 9: revocation of single access tokens
ALTER TABLE revocations ADD COLUMN token_id text CHECK (length(token_id) <= 64);
ALTER TABLE revocations DROP CONSTRAINT revocations_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_one_subject CHECK (num_nonnulls(session_id, user_id, client_id, token_id) = 1);
ALTER TABLE revocations DROP CONSTRAINT revocations_check1;
ALTER TABLE revocations ADD CONSTRAINT revocations_version CHECK ((min_version IS NOT NULL) = (user_id IS NOT NULL OR client_id IS NOT NULL));
COMMENT ON COLUMN revocations.token_id IS 'The jti of one access token revoked on its own (RFC 7009), such as a machine client''s, which belongs to no session; kept until that token has expired.';

-- +step 10: login throttling by client network, attempts counted before they are made
COMMENT ON TABLE rate_limits IS 'Failure budgets of operations that declare x-rate-limit, shared by every replica: per client network (address:<operation>:<network>, an IPv6 address by its prefix) or per account and client network (account:<operation>:<network> <account>), the attempts since window_start, each counted as a failure from its start unless it was answered otherwise; past the budget, the key is refused until blocked_until, a delay that doubles with every further failure. Keys of the form before step 10 are no longer read and are pruned.';

-- +step 11: the holders of a role in id order
-- GET /users?role= walks one role's grants in user id order
-- (ListRoleHolders), rather than every account probed for the role. The
-- index on role_id alone is a prefix of this one.
CREATE INDEX user_roles_role_user_idx ON user_roles (role_id, user_id);
DROP INDEX user_roles_role_id_idx;

-- +step 12: browser sign-in (OAuth 2.1 authorization code with PKCE, OpenID Connect)
-- Clients that sign people in: registered redirect URIs, and public
-- clients (browser and mobile apps), which hold no secret.
ALTER TABLE clients ALTER COLUMN secret_hash DROP NOT NULL;
ALTER TABLE clients ADD COLUMN public boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}' CHECK (cardinality(redirect_uris) <= 20);
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}' CHECK (cardinality(post_logout_redirect_uris) <= 20);
ALTER TABLE clients ADD CONSTRAINT clients_public_secret CHECK ((secret_hash IS NULL) = public);
COMMENT ON TABLE clients IS 'Programs that get tokens: with the client credentials grant (RFC 6749 section 4.4), holding roles as accounts do, and with the authorization code grant for the people who sign in through them.';
COMMENT ON COLUMN clients.secret_hash IS 'SHA-256 of the client secret, 256 random bits shown once: a fast hash suffices for a secret of that entropy. NULL for a public client.';
COMMENT ON COLUMN clients.public IS 'A public client (token_endpoint_auth_method none: an app in a browser or on a device) holds no secret and proves itself with PKCE alone.';
COMMENT ON COLUMN clients.redirect_uris IS 'Where the authorization endpoint may send a person back to, compared exactly.';
COMMENT ON COLUMN clients.post_logout_redirect_uris IS 'Where the end-session endpoint may send a person back to, compared exactly.';

-- Sessions of the sign-in page (the browser's cookie), and the sessions a
-- client's code exchange starts under one of them.
ALTER TABLE sessions ADD COLUMN cookie_hash bytea UNIQUE CHECK (length(cookie_hash) = 32);
ALTER TABLE sessions ADD COLUMN parent_id uuid REFERENCES sessions (id) ON DELETE SET NULL;
ALTER TABLE sessions ADD COLUMN client_id text CHECK (length(client_id) BETWEEN 1 AND 64);
ALTER TABLE sessions ADD COLUMN auth_time timestamptz;
CREATE INDEX sessions_parent_idx ON sessions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX sessions_client_idx ON sessions (client_id) WHERE client_id IS NOT NULL;
COMMENT ON COLUMN sessions.cookie_hash IS 'SHA-256 of the sign-in cookie of a browser session (the hosted sign-in page); NULL for a session of tokens.';
COMMENT ON COLUMN sessions.parent_id IS 'The browser session a client''s session was started under (the sid of its id tokens); ending a browser session ends these with it.';
COMMENT ON COLUMN sessions.client_id IS 'The client the session''s tokens were issued to; NULL for the built-in first-party client (the password grant).';
COMMENT ON COLUMN sessions.auth_time IS 'When the person last entered their password for the session (OpenID Connect auth_time); NULL means created_at.';

-- One-use codes of the authorization endpoint.
CREATE TABLE authorization_codes (
    hash               bytea       PRIMARY KEY CHECK (length(hash) = 32),
    client_id          text        NOT NULL CHECK (length(client_id) BETWEEN 1 AND 64),
    user_id            bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    redirect_uri       text        NOT NULL CHECK (length(redirect_uri) <= 2000),
    code_challenge     text        NOT NULL CHECK (length(code_challenge) = 43),
    scope              text[]      NOT NULL,
    nonce              text        CHECK (length(nonce) <= 512),
    auth_time          timestamptz NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    used_at            timestamptz,
    session_id         uuid        REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
COMMENT ON TABLE authorization_codes IS 'Codes of the authorization endpoint, by the SHA-256 of the code (never the code): each lives 60 s, is bound to its client, redirect URI and PKCE challenge (S256), and is used once. A used code is kept a day past its expiry, so that one presented again ends the session its first exchange started (RFC 6749 section 4.1.2).';
COMMENT ON COLUMN authorization_codes.scope IS 'The scope granted: OpenID Connect scopes (openid, email, profile, offline_access) and role names.';
COMMENT ON COLUMN authorization_codes.session_id IS 'The session the code''s exchange started; NULL until it is used.';

-- Keys that sign id tokens (RS256 by default), beside those that sign
-- access tokens.
ALTER TABLE signing_keys ADD COLUMN purpose text NOT NULL DEFAULT 'access' CHECK (purpose IN ('access', 'id'));
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_alg_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_alg_check CHECK (alg IN ('EdDSA', 'ES256', 'RS256'));
COMMENT ON COLUMN signing_keys.purpose IS 'What the key signs: access tokens, or id tokens (OpenID Connect); each purpose rotates on its own.';

-- +step 13: accounts that help themselves (sign-up, email verification, password reset, email change)
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
COMMENT ON COLUMN users.email_verified_at IS 'When the account proved it receives mail at its email (a link from a verification, reset or email-change mail); NULL while unproven.';

CREATE TABLE mail_tokens (
    hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    email      text        NOT NULL CHECK (length(email) BETWEEN 1 AND 254),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX mail_tokens_user_idx ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expires_idx ON mail_tokens (expires_at);
COMMENT ON TABLE mail_tokens IS 'Tokens in the links of mails, by the SHA-256 of the token (never the token): 256 random bits, for one purpose and one account, used once; a newer token of the same purpose and account deletes the older ones.';
COMMENT ON COLUMN mail_tokens.email IS 'The address the mail went to: the account''s (verification, reset), or the new one (email change); the token is good only while it is still the one it proves.';

-- +step 14: mail outbox
-- Mail is queued in the transaction of the change that causes it and sent
-- afterwards by whichever replica claims it (package mail), so that a mail
-- server that is down loses nothing and a rolled-back change sends nothing.
CREATE TABLE mail_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient       text        NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         text        NOT NULL CHECK (length(subject) BETWEEN 1 AND 998),
    text_body       text        NOT NULL CHECK (length(text_body) <= 1048576),
    html_body       text        NOT NULL CHECK (length(html_body) <= 1048576),
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text        CHECK (length(last_error) <= 500),
    sent_at         timestamptz,
    failed_at       timestamptz,
    CONSTRAINT mail_outbox_one_end CHECK (sent_at IS NULL OR failed_at IS NULL),
    CONSTRAINT mail_outbox_body CHECK (CASE WHEN sent_at IS NULL AND failed_at IS NULL
                                            THEN text_body <> ''
                                            ELSE text_body = '' AND html_body = '' END)
);
COMMENT ON TABLE mail_outbox IS 'Mail waiting to be sent, and for a while (7 days) mail sent or given up. A replica claims a due row with FOR UPDATE SKIP LOCKED by moving next_attempt_at past the time its send may take, sends it, then records the end: a replica that stops in between leaves the row to be sent again once that time is over.';
COMMENT ON COLUMN mail_outbox.recipient IS 'The address the mail goes to (To, and the SMTP envelope).';
COMMENT ON COLUMN mail_outbox.text_body IS 'The text/plain part. With html_body it carries the links of the mail, one-use tokens in plain: both are erased once the mail is sent or given up.';
COMMENT ON COLUMN mail_outbox.html_body IS 'The text/html alternative; empty for a text-only mail.';
COMMENT ON COLUMN mail_outbox.next_attempt_at IS 'When the mail is next due: a retry after a failure (the delay doubles), or the end of a claim, when another replica may take it.';
COMMENT ON COLUMN mail_outbox.attempts IS 'How many times the mail has been claimed to be sent.';
COMMENT ON COLUMN mail_outbox.last_error IS 'Why the last attempt failed, cut short: the mail server''s answer or the connection''s error, never the body nor a credential.';
COMMENT ON COLUMN mail_outbox.sent_at IS 'When the mail server accepted the mail.';
COMMENT ON COLUMN mail_outbox.failed_at IS 'When sending was given up; last_error says why.';
-- The worker's claim: the earliest due row still to send.
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;
-- Pruning: rows that ended before the retention.
CREATE INDEX mail_outbox_ended_idx ON mail_outbox ((coalesce(sent_at, failed_at)));

-- +step 15: a budget of mail per address
-- Enqueue counts the mail queued to an address in the last hour.
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (lower(recipient), created_at);

-- +step 16: second factors
-- A second factor is a table of its own (TOTP now; passkeys may follow
-- beside it), and what a sign-in carries between its password and its
-- second factor is a challenge (package mfa).
CREATE TABLE mfa_totp (
    user_id      bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       bytea       NOT NULL CHECK (length(secret) BETWEEN 29 AND 256),
    created_at   timestamptz NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint      NOT NULL DEFAULT 0 CHECK (last_step >= 0)
);
COMMENT ON TABLE mfa_totp IS 'An account''s TOTP authenticator (RFC 6238: SHA-1, 6 digits, 30 s steps), at most one: pending from enrolment until a code confirms it, then active; a new enrolment replaces a pending one, never an active one.';
COMMENT ON COLUMN mfa_totp.secret IS 'The shared secret (20 random bytes), sealed with AES-256-GCM under a key derived from ROLEGATE_MASTER_KEY for second factors (nonce first; "totp:" and the user id are the additional data).';
COMMENT ON COLUMN mfa_totp.created_at IS 'When the enrolment that made the secret started.';
COMMENT ON COLUMN mfa_totp.confirmed_at IS 'When a code confirmed the authenticator; NULL while the enrolment is pending, when it is no second factor yet.';
COMMENT ON COLUMN mfa_totp.last_step IS 'The latest time step (Unix time / 30) whose code was accepted: a code is accepted only for a later step, so that none is accepted twice, even by two requests at once.';

CREATE TABLE mfa_recovery_codes (
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, hash)
);
COMMENT ON TABLE mfa_recovery_codes IS 'One-use codes that stand in for a second factor, shown once when they are made (10 at a time, a new set replacing the old), by the SHA-256 of the code in its canonical form (never the code): 80 random bits, so a fast hash suffices.';
COMMENT ON COLUMN mfa_recovery_codes.used_at IS 'When the code was used; NULL while it can be.';

CREATE TABLE mfa_challenges (
    hash        bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amr         text[]      NOT NULL CHECK (cardinality(amr) BETWEEN 1 AND 8),
    scope       text[],
    client_id   text        CHECK (length(client_id) BETWEEN 1 AND 64),
    user_agent  text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    client_addr text        NOT NULL DEFAULT '' CHECK (length(client_addr) <= 64),
    failures    integer     NOT NULL DEFAULT 0 CHECK (failures >= 0),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);
COMMENT ON TABLE mfa_challenges IS 'Sign-ins waiting for their second factor (the mfa_token of the password grant''s mfa_required), by the SHA-256 of the token (never the token): 256 random bits, valid a few minutes, used once, void after 5 wrong codes.';
COMMENT ON COLUMN mfa_challenges.amr IS 'How the person authenticated so far (RFC 8176 values, e.g. pwd); the second factor adds to them.';
COMMENT ON COLUMN mfa_challenges.scope IS 'The roles the sign-in asked for (scope); NULL for all the account holds.';
COMMENT ON COLUMN mfa_challenges.client_id IS 'The client the sign-in''s tokens are for; NULL for the built-in first-party client (the password grant).';
COMMENT ON COLUMN mfa_challenges.failures IS 'Wrong codes given for the challenge so far; at 5 it is void.';
COMMENT ON COLUMN mfa_challenges.created_at IS 'When the first factor was given (the password entered).';

-- +step 17: how the person of a session authenticated
ALTER TABLE sessions ADD COLUMN amr text[];
COMMENT ON COLUMN sessions.amr IS 'How the person authenticated for the session (RFC 8176 amr values: pwd, otp, hwk, swk, mfa); its tokens carry it, and acr from it. NULL means {pwd}, as for every session before second factors.';
ALTER TABLE authorization_codes ADD COLUMN amr text[];
COMMENT ON COLUMN authorization_codes.amr IS 'The browser session''s amr when the code was issued; NULL means {pwd}.';

-- +step 18: passkeys
-- Passkeys (WebAuthn credentials, package passkey) beside TOTP: an
-- account's user handle, its credentials, and the ceremonies that carry a
-- registration or a sign-in from its options to the browser's answer.
CREATE TABLE passkey_users (
    user_id    bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle     bytea       NOT NULL UNIQUE CHECK (length(handle) BETWEEN 32 AND 64),
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE passkey_users IS 'An account''s WebAuthn user handle, made when it first begins registering a passkey and kept for the life of the account (removing its passkeys keeps it).';
COMMENT ON COLUMN passkey_users.handle IS 'The user handle (user.id) every passkey of the account holds: random bytes, never the account id or email, by which a passwordless sign-in finds the account.';

CREATE TABLE passkeys (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rp_id           text        NOT NULL CHECK (length(rp_id) BETWEEN 1 AND 253),
    credential_id   bytea       NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
    public_key      bytea       NOT NULL CHECK (length(public_key) BETWEEN 1 AND 4096),
    sign_count      bigint      NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    aaguid          uuid        NOT NULL,
    transports      text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(transports) <= 8),
    backup_eligible boolean     NOT NULL,
    backup_state    boolean     NOT NULL,
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    CHECK (backup_eligible OR NOT backup_state)
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, rp_id);
COMMENT ON TABLE passkeys IS 'Passkeys: WebAuthn credentials of accounts, each a second factor and, on the hosted sign-in page, a passwordless sign-in. A credential id is registered to one account only.';
COMMENT ON COLUMN passkeys.rp_id IS 'The relying party id (ROLEGATE_PUBLIC_URL''s host) the passkey was made for; it signs in only there, so a passkey of another host is listed but is no factor.';
COMMENT ON COLUMN passkeys.credential_id IS 'The credential id the authenticator chose, which every assertion names.';
COMMENT ON COLUMN passkeys.public_key IS 'The credential public key as a COSE_Key (RFC 9052), no secret.';
COMMENT ON COLUMN passkeys.sign_count IS 'The authenticator''s signature counter at the last accepted assertion: a later assertion must give a greater one (or both be 0), or it is refused as from a cloned authenticator.';
COMMENT ON COLUMN passkeys.aaguid IS 'The authenticator model''s AAGUID as it reported it; all zeros when it did not say (attestation is not asked for, so it is unverified).';
COMMENT ON COLUMN passkeys.transports IS 'How the browser reached the authenticator (usb, nfc, ble, smart-card, hybrid, internal), as a hint for later sign-ins.';
COMMENT ON COLUMN passkeys.backup_eligible IS 'The BE flag: the key may be synced to other devices (a synced passkey, amr swk) rather than bound to one (amr hwk). Fixed for the life of the credential.';
COMMENT ON COLUMN passkeys.backup_state IS 'The BS flag at the last ceremony: the key is backed up (synced) now.';
COMMENT ON COLUMN passkeys.name IS 'What the account holder calls the passkey.';
COMMENT ON COLUMN passkeys.last_used_at IS 'When an assertion of the passkey was last accepted; NULL until then.';

CREATE TABLE passkey_ceremonies (
    hash         bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id      bigint      REFERENCES users (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('register', 'login')),
    session_data jsonb       NOT NULL CHECK (octet_length(session_data::text) <= 65536),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    CHECK (kind = 'login' OR user_id IS NOT NULL)
);
CREATE INDEX passkey_ceremonies_user_idx ON passkey_ceremonies (user_id);
CREATE INDEX passkey_ceremonies_expires_idx ON passkey_ceremonies (expires_at);
COMMENT ON TABLE passkey_ceremonies IS 'WebAuthn ceremonies between their options and the browser''s answer, so that any replica finishes them: by the SHA-256 of the ceremony handle (never the handle), 256 random bits, valid 5 minutes, used once.';
COMMENT ON COLUMN passkey_ceremonies.user_id IS 'The account registering or signing in; NULL for a passwordless sign-in, whose account the passkey names.';
COMMENT ON COLUMN passkey_ceremonies.kind IS 'register: making a passkey; login: an assertion, as a second factor (user_id set) or passwordless (user_id NULL).';
COMMENT ON COLUMN passkey_ceremonies.session_data IS 'The WebAuthn library''s SessionData (challenge, relying party, user handle, allowed credentials) as JSON, kept as the library made it.';

-- +step 19: organizations
-- Roles within an organization (package orgs): organizations, the roles
-- their members may hold, their members, and the change log that every
-- replica follows (by seq, and through NOTIFY rolegate_orgs) to keep the
-- memberships in memory. Triggers write the log, in the transaction of the
-- change, so that no change escapes it: neither the store's own, nor the
-- deletions that cascade from deleting an organization or an account.
--
-- The built-in roles owner, editor and viewer exist in every organization
-- without a row: org_roles holds only the roles created for one, so that an
-- organization costs one row, and the built-ins cannot be removed or
-- shadowed.
CREATE TABLE orgs (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{2,64}$'),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_by bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orgs IS 'Organizations: groups of accounts, each holding roles within the organization (org_members) that x-roles entries org:<role> of an operation with x-org ask for.';
COMMENT ON COLUMN orgs.slug IS 'The organization''s unique short name: 2 to 64 of a-z, 0-9 and -.';
COMMENT ON COLUMN orgs.name IS 'What the organization calls itself (1 to 200 characters).';
COMMENT ON COLUMN orgs.created_by IS 'The account that created the organization (its first owner); NULL once that account is deleted.';

CREATE TABLE org_roles (
    org_id     bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (name ~ '^[a-z][a-z0-9_.-]{0,63}$' AND name NOT IN ('owner', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, name)
);
COMMENT ON TABLE org_roles IS 'Roles created for one organization, beside the built-in owner, editor and viewer that every organization has without a row here.';
COMMENT ON COLUMN org_roles.name IS 'The role''s name, of the same form as a global role''s; x-roles names it org:<name>.';

CREATE TABLE org_members (
    org_id     bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles      text[]      NOT NULL CHECK (array_ndims(roles) = 1 AND cardinality(roles) BETWEEN 1 AND 128
                                           AND array_position(roles, NULL) IS NULL
                                           AND array_to_string(roles, ',') ~ '^[a-z][a-z0-9_.-]{0,63}(,[a-z][a-z0-9_.-]{0,63})*$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
COMMENT ON TABLE org_members IS 'Who is a member of which organization, with which roles there. Package orgs keeps at least one owner in every organization: it locks the organization''s row before changing its members. Deleting an account deletes its memberships, even a last owner''s.';
COMMENT ON COLUMN org_members.roles IS 'The member''s roles in the organization, sorted and without duplicates: built-in (owner, editor, viewer) or in org_roles for the organization; never empty.';
-- The organizations of an account, in id order.
CREATE INDEX org_members_user_idx ON org_members (user_id, org_id);
-- Whether an organization still has an owner, without reading its other members.
CREATE INDEX org_members_owner_idx ON org_members (org_id) WHERE 'owner' = ANY (roles);

CREATE TABLE org_changes (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint      NOT NULL,
    user_id    bigint,
    kind       text        NOT NULL CHECK (kind IN ('member', 'role', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((user_id IS NOT NULL) = (kind = 'member'))
);
COMMENT ON TABLE org_changes IS 'The change log replicas follow (by seq, and through NOTIFY rolegate_orgs, whose payload is the highest seq of the transaction) to keep memberships in memory: a row says what changed, a replica reads the current state. Written by triggers only; kept an hour (package orgs, Retention), as a replica further behind loads every membership again.';
COMMENT ON COLUMN org_changes.user_id IS 'The member whose membership was added, changed or removed (kind member); NULL for a change to the whole organization.';
COMMENT ON COLUMN org_changes.kind IS 'member: a membership of user_id changed; role: a role was created for the organization; deleted: the organization was deleted (its memberships each have their member row in the same transaction).';
COMMENT ON COLUMN org_changes.created_at IS 'When the row was written (clock_timestamp, not the transaction''s start), so that a replica''s re-reading of the last 30 seconds covers a transaction that commits a lower seq after a higher one.';
CREATE INDEX org_changes_created_idx ON org_changes (created_at);

CREATE FUNCTION org_members_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH logged AS (
            INSERT INTO org_changes (org_id, user_id, kind)
            SELECT org_id, user_id, 'member' FROM new_rows ORDER BY org_id, user_id
            RETURNING seq)
        SELECT max(seq) INTO last FROM logged;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH logged AS (
            INSERT INTO org_changes (org_id, user_id, kind)
            SELECT org_id, user_id, 'member' FROM (SELECT org_id, user_id FROM old_rows UNION SELECT org_id, user_id FROM new_rows) c
            ORDER BY org_id, user_id
            RETURNING seq)
        SELECT max(seq) INTO last FROM logged;
    ELSE
        WITH logged AS (
            INSERT INTO org_changes (org_id, user_id, kind)
            SELECT org_id, user_id, 'member' FROM old_rows ORDER BY org_id, user_id
            RETURNING seq)
        SELECT max(seq) INTO last FROM logged;
    END IF;
    IF last IS NOT NULL THEN
        PERFORM pg_notify('rolegate_orgs', last::text);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION org_members_log() IS 'Logs every membership a statement on org_members added, changed or removed (org_changes, kind member), and notifies rolegate_orgs.';
CREATE TRIGGER org_members_inserted AFTER INSERT ON org_members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION org_members_log();
CREATE TRIGGER org_members_updated AFTER UPDATE ON org_members
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION org_members_log();
CREATE TRIGGER org_members_deleted AFTER DELETE ON org_members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION org_members_log();

CREATE FUNCTION orgs_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    IF TG_TABLE_NAME = 'org_roles' THEN
        INSERT INTO org_changes (org_id, kind) VALUES (NEW.org_id, 'role') RETURNING seq INTO last;
    ELSE
        INSERT INTO org_changes (org_id, kind) VALUES (OLD.id, 'deleted') RETURNING seq INTO last;
    END IF;
    PERFORM pg_notify('rolegate_orgs', last::text);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION orgs_log() IS 'Logs a change to a whole organization (org_changes, user_id NULL): a role created for it, or its deletion; and notifies rolegate_orgs.';
CREATE TRIGGER org_roles_inserted AFTER INSERT ON org_roles FOR EACH ROW EXECUTE FUNCTION orgs_log();
CREATE TRIGGER orgs_deleted AFTER DELETE ON orgs FOR EACH ROW EXECUTE FUNCTION orgs_log();

-- +step 20: an organization's notes
CREATE TABLE org_notes (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    author_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_src text        NOT NULL,
    title        text        NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE org_notes IS 'Notes shared with an organization, apart from personal notes: its viewers read them, its editors and owners (and the author) change them.';
-- An organization's notes, newest first (keyset pagination).
CREATE INDEX org_notes_org_created_idx ON org_notes (org_id, created_at DESC, id DESC);
CREATE INDEX org_notes_author_idx ON org_notes (author_id);
