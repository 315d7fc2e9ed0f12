-- Core tables: identity (owned by auth) and the event plumbing every service shares.
-- Status-like columns are TEXT with CHECK constraints rather than PostgreSQL enums: adding a
-- value is then a plain migration, and diesel maps them without custom SQL types.

CREATE TABLE users (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT        NOT NULL,
    -- stored trimmed and lower-cased by auth, so a plain unique index is case-insensitive
    email             TEXT        NOT NULL,
    phone_number      TEXT,
    password_hash     TEXT        NOT NULL,
    role              TEXT        NOT NULL DEFAULT 'customer',
    is_active         BOOLEAN     NOT NULL DEFAULT TRUE,
    email_verified_at TIMESTAMPTZ,
    twofa_enabled     BOOLEAN     NOT NULL DEFAULT FALSE,
    twofa_secret      BYTEA,      -- AES-GCM ciphertext (nonce || ciphertext), never plaintext
    last_login_at     TIMESTAMPTZ,
    deactivated_at    TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_email_normalized CHECK (email = lower(btrim(email)) AND email <> ''),
    CONSTRAINT users_role_check CHECK (role IN ('customer', 'support_staff', 'technical_team', 'manager'))
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_role_idx ON users (role);
CREATE INDEX users_created_at_idx ON users (created_at);

CREATE TABLE sessions (
    id               UUID        PRIMARY KEY,
    user_id          BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rotation_counter INTEGER     NOT NULL DEFAULT 0,
    user_agent       TEXT,
    ip               TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    revoked_at       TIMESTAMPTZ,
    revoked_reason   TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token ever issued for a session, hashed. Keeping the rotated ones is what lets
-- a replayed (stolen) token be recognised as reuse and revoke the session, while a made-up
-- token matches nothing and revokes nothing.
CREATE TABLE refresh_tokens (
    token_hash  BYTEA       PRIMARY KEY,
    session_id  UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    replaced_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE TABLE email_verification_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA       NOT NULL UNIQUE,
    code_hash  BYTEA       NOT NULL,
    attempts   INTEGER     NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_verification_tokens_user_id_idx ON email_verification_tokens (user_id);

CREATE TABLE password_reset_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA       NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_tokens_user_id_idx ON password_reset_tokens (user_id);

CREATE TABLE twofa_recovery_codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX twofa_recovery_codes_user_id_idx ON twofa_recovery_codes (user_id);

-- Transactional outbox shared by every producing service (one table, a producer column).
-- `payload` is the whole event envelope as published; `headers` the AMQP headers (trace context).
CREATE TABLE outbox (
    id           UUID        PRIMARY KEY,
    producer     TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    payload      JSONB       NOT NULL,
    headers      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON outbox (producer, created_at) WHERE published_at IS NULL;

-- Idempotent consumers: an event id recorded here, in the same transaction as its effect,
-- is never applied again by the same consumer.
CREATE TABLE inbox (
    consumer   TEXT        NOT NULL,
    event_id   UUID        NOT NULL,
    event_type TEXT        NOT NULL,
    handled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
