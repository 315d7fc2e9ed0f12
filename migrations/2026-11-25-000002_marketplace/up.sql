-- Marketplace: the automation catalogue, each customer's automations with their token balances,
-- and the append-only token ledger that is the only way those balances change.

CREATE TABLE automations (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT        NOT NULL,
    description        TEXT        NOT NULL DEFAULT '',
    pricing_type       TEXT        NOT NULL DEFAULT 'token_per_session',
    price_per_token    BIGINT      NOT NULL DEFAULT 0,   -- Rials
    demo_tokens        BIGINT      NOT NULL DEFAULT 5,   -- granted to each customer who adds it
    -- A status text rather than an is_active flag: the panel reads `status` verbatim (docs/panels.md),
    -- and a text can take more values later without another column. Listing is separate:
    -- an unlisted automation keeps serving the customers who already have it.
    status             TEXT        NOT NULL DEFAULT 'active',
    is_listed          BOOLEAN     NOT NULL DEFAULT TRUE,
    health_status      TEXT        NOT NULL DEFAULT 'unknown',
    last_health_at     TIMESTAMPTZ,
    provision_url      TEXT,
    health_check_url   TEXT,
    -- SHA-256 of the vendor's service token; the token itself is shown once and never stored.
    service_token_hash BYTEA       UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT automations_pricing_type_check
        CHECK (pricing_type IN ('token_per_session', 'token_per_step', 'flat_fee')),
    CONSTRAINT automations_price_per_token_check CHECK (price_per_token >= 0),
    CONSTRAINT automations_demo_tokens_check CHECK (demo_tokens >= 0),
    CONSTRAINT automations_status_check CHECK (status IN ('active', 'inactive')),
    CONSTRAINT automations_health_status_check
        CHECK (health_status IN ('healthy', 'degraded', 'down', 'unknown')),
    CONSTRAINT automations_service_token_hash_len
        CHECK (service_token_hash IS NULL OR octet_length(service_token_hash) = 32)
);
-- The public catalogue: listed, active automations (a handful of rows, but the query is hot).
CREATE INDEX automations_listed_idx ON automations (created_at) WHERE is_listed AND status = 'active';

CREATE TABLE user_automations (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- RESTRICT, not CASCADE: the row carries tokens bought with money and is referenced by the
    -- ledger and payments. Accounts are deactivated and anonymised, never deleted.
    user_id            BIGINT      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    -- Admin deletes an automation only when no user has it; the FK enforces that too.
    automation_id      BIGINT      NOT NULL REFERENCES automations (id) ON DELETE RESTRICT,
    -- Plaintext so that "unique across the platform" can be a plain index (an AES-GCM ciphertext
    -- with a random nonce could not be); never returned in full by the API.
    telegram_bot_token TEXT,
    -- Balances are caches of the ledger, updated in the same transaction as each ledger entry;
    -- they start at zero and the demo grant is itself a ledger entry.
    tokens_remaining   BIGINT      NOT NULL DEFAULT 0,
    demo_tokens        BIGINT      NOT NULL DEFAULT 0,
    is_demo_active     BOOLEAN     NOT NULL DEFAULT TRUE,
    demo_expired       BOOLEAN     NOT NULL DEFAULT FALSE,
    status             TEXT        NOT NULL DEFAULT 'active',
    integration_status TEXT        NOT NULL DEFAULT 'pending',
    provisioned_at     TIMESTAMPTZ,
    -- Set when tokens.low is emitted, cleared when a credit lifts the balance above the
    -- threshold again, so the alert fires once per downward crossing.
    low_alert_sent     BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_automations_user_automation_key UNIQUE (user_id, automation_id),
    CONSTRAINT user_automations_tokens_remaining_check CHECK (tokens_remaining >= 0),
    CONSTRAINT user_automations_demo_tokens_check CHECK (demo_tokens >= 0),
    CONSTRAINT user_automations_status_check CHECK (status IN ('active', 'paused', 'canceled')),
    CONSTRAINT user_automations_integration_status_check
        CHECK (integration_status IN ('pending', 'provisioned', 'failed')),
    CONSTRAINT user_automations_telegram_bot_token_nonempty
        CHECK (telegram_bot_token IS NULL OR telegram_bot_token <> '')
);
-- (user_id, automation_id) unique also serves "a user's automations".
CREATE INDEX user_automations_automation_id_idx ON user_automations (automation_id);
-- Unique only when set: many customers have not connected a bot yet.
CREATE UNIQUE INDEX user_automations_telegram_bot_token_key
    ON user_automations (telegram_bot_token) WHERE telegram_bot_token IS NOT NULL;

-- Append-only: rows are inserted, never updated or deleted. `delta` moves the paid balance,
-- `demo_delta` the demo balance; the *_after columns are the balances after this entry.
CREATE TABLE token_ledger (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No cascade: ledger rows outlive anything (RESTRICT blocks deleting a balance with history).
    user_automation_id BIGINT      NOT NULL REFERENCES user_automations (id) ON DELETE RESTRICT,
    kind               TEXT        NOT NULL,
    delta              BIGINT      NOT NULL DEFAULT 0,
    demo_delta         BIGINT      NOT NULL DEFAULT 0,
    balance_after      BIGINT      NOT NULL,
    demo_balance_after BIGINT      NOT NULL,
    -- Idempotency: `payment:<id>`, `usage:<automation>:<key>`, `adjust:<key>`, `demo:<ua id>`.
    source_key         TEXT        NOT NULL UNIQUE,
    usage_type         TEXT,
    meta               JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- The staff member behind an adjustment or refund; NO ACTION keeps the audit trail intact.
    actor_id           BIGINT      REFERENCES users (id),
    reason             TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_ledger_kind_check
        CHECK (kind IN ('demo_grant', 'purchase', 'consumption', 'adjustment', 'refund')),
    CONSTRAINT token_ledger_balance_after_check CHECK (balance_after >= 0 AND demo_balance_after >= 0),
    -- Direction per kind where it is unambiguous; adjustments and refunds may go either way.
    CONSTRAINT token_ledger_kind_sign CHECK (
        CASE kind
            WHEN 'demo_grant'  THEN delta = 0 AND demo_delta >= 0
            WHEN 'purchase'    THEN delta > 0 AND demo_delta = 0
            WHEN 'consumption' THEN delta <= 0 AND demo_delta <= 0
            ELSE TRUE
        END),
    -- A manual adjustment always says who and why.
    CONSTRAINT token_ledger_adjustment_actor
        CHECK (kind <> 'adjustment' OR (actor_id IS NOT NULL AND reason IS NOT NULL))
);
-- Usage of one user automation by time; per-user-per-day usage goes through the user's few
-- user_automations and range-scans this index for each.
CREATE INDEX token_ledger_user_automation_created_idx ON token_ledger (user_automation_id, created_at);
-- Platform-wide by kind and time: admin adjustment history, tokens consumed today / 30 days.
CREATE INDEX token_ledger_kind_created_idx ON token_ledger (kind, created_at);
CREATE INDEX token_ledger_actor_id_idx ON token_ledger (actor_id) WHERE actor_id IS NOT NULL;
