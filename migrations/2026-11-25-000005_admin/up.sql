-- Admin: OpenAI API keys (encrypted at rest) and the audit log of staff actions.

CREATE TABLE openai_keys (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alias          TEXT        NOT NULL UNIQUE,
    key_ciphertext BYTEA       NOT NULL,   -- AES-GCM (nonce || ciphertext), key from the environment
    key_tail       TEXT        NOT NULL,   -- last 4 characters, the only part ever shown
    status         TEXT        NOT NULL DEFAULT 'active',
    daily_limit    BIGINT,                 -- null: no limit
    -- used_today counts for usage_date (UTC); the first use on a later day resets it, so no
    -- nightly job is needed.
    used_today     BIGINT      NOT NULL DEFAULT 0,
    usage_date     DATE        NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date),
    last_used_at   TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT openai_keys_status_check CHECK (status IN ('active', 'disabled', 'exhausted')),
    CONSTRAINT openai_keys_key_tail_check CHECK (char_length(key_tail) <= 4),
    CONSTRAINT openai_keys_daily_limit_check CHECK (daily_limit IS NULL OR daily_limit > 0),
    CONSTRAINT openai_keys_used_today_check CHECK (used_today >= 0)
);

-- Append-only record of what staff did.
CREATE TABLE admin_audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NO ACTION: the log must outlive the accounts it names; a staff account with history is
    -- deactivated, not deleted.
    actor_id    BIGINT      NOT NULL REFERENCES users (id),
    action      TEXT        NOT NULL,   -- e.g. `tokens.adjust`, `user.update`, `discount.create`
    target_type TEXT        NOT NULL,   -- e.g. `user`, `user_automation`, `automation`
    target_id   TEXT,                   -- text: ids are BIGINT or UUID; null for e.g. a broadcast
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_log_created_at_idx ON admin_audit_log (created_at);
CREATE INDEX admin_audit_log_actor_created_idx ON admin_audit_log (actor_id, created_at);
CREATE INDEX admin_audit_log_target_idx ON admin_audit_log (target_type, target_id);
