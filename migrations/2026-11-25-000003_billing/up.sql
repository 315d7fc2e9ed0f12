-- Billing: Zarinpal payments and discount codes. Money rows are never cascaded away: every FK
-- from here is RESTRICT, and accounts are anonymised rather than deleted.

CREATE TABLE payments (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id            BIGINT      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    automation_id      BIGINT      NOT NULL REFERENCES automations (id) ON DELETE RESTRICT,
    -- NOT NULL: init requires the user to own the automation already.
    user_automation_id BIGINT      NOT NULL REFERENCES user_automations (id) ON DELETE RESTRICT,
    -- What the payer pays, in Rials, after any discount; computed and stored before the gateway
    -- request and sent unchanged to verify.
    amount             BIGINT      NOT NULL,
    tokens_purchased   BIGINT      NOT NULL,
    method             TEXT        NOT NULL DEFAULT 'online',
    gateway            TEXT        NOT NULL DEFAULT 'zarinpal',
    description        TEXT,       -- as sent to the gateway; the panel lists it
    transaction_id     TEXT        UNIQUE,
    -- Null until the gateway answers the payment request (the row is written before the call).
    authority          TEXT        UNIQUE,
    ref_id             BIGINT,
    card_pan           TEXT,       -- masked as the gateway sends it (502229******5995)
    status             TEXT        NOT NULL DEFAULT 'pending',
    failure_reason     TEXT,       -- for payment.failed and the callback's message
    -- Snapshot of the code applied at init; the redemption row holds the discount link.
    discount_code      TEXT,
    discount_percent   INTEGER,
    return_path        TEXT,       -- a path on the user panel for the final redirect
    verify_attempts    INTEGER     NOT NULL DEFAULT 0,
    -- Reconciliation of stale pending payments: when to look again, when we last looked.
    next_check_at      TIMESTAMPTZ,
    last_checked_at    TIMESTAMPTZ,
    meta               JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    verified_at        TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_status_check CHECK (status IN
        ('pending', 'verifying', 'succeeded', 'failed', 'canceled', 'expired', 'needs_review')),
    -- Zero only for a 100 % discount, which succeeds without a gateway call (docs/payments.md).
    -- IS NOT DISTINCT FROM: with no discount the test must be false, not NULL (which would pass).
    CONSTRAINT payments_amount_check
        CHECK (amount > 0 OR (amount = 0 AND discount_percent IS NOT DISTINCT FROM 100)),
    CONSTRAINT payments_tokens_purchased_check CHECK (tokens_purchased > 0),
    CONSTRAINT payments_verify_attempts_check CHECK (verify_attempts >= 0),
    CONSTRAINT payments_discount_check CHECK (
        (discount_code IS NULL) = (discount_percent IS NULL)
        AND (discount_percent IS NULL OR discount_percent BETWEEN 1 AND 100)),
    -- Never a full card number.
    CONSTRAINT payments_card_pan_masked CHECK (card_pan IS NULL OR card_pan !~ '^[0-9]{12,19}$'),
    -- Only a local path: one leading slash, not "//host" or "/\host" (open redirect).
    CONSTRAINT payments_return_path_check CHECK (return_path IS NULL OR (
        left(return_path, 1) = '/' AND left(return_path, 2) NOT IN ('//', '/\')))
);
CREATE INDEX payments_user_created_idx ON payments (user_id, created_at);
-- Admin lists by status, revenue by status and time, and the reconciler's scan by age.
CREATE INDEX payments_status_created_idx ON payments (status, created_at);
-- The reconciler's queue: unfinished payments due for another look.
CREATE INDEX payments_next_check_idx ON payments (next_check_at)
    WHERE status IN ('pending', 'verifying');
CREATE INDEX payments_automation_id_idx ON payments (automation_id);
CREATE INDEX payments_user_automation_id_idx ON payments (user_automation_id);

CREATE TABLE discount_codes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored trimmed and lower-cased by billing (like users.email), so a plain unique index is
    -- case-insensitive and lookups are a plain equality.
    code            TEXT        NOT NULL,
    percent_off     INTEGER     NOT NULL,
    active          BOOLEAN     NOT NULL DEFAULT TRUE,
    starts_at       TIMESTAMPTZ,
    ends_at         TIMESTAMPTZ,
    max_redemptions INTEGER,    -- null: unlimited
    per_user_limit  INTEGER,    -- null: unlimited
    -- Null: any automation. CASCADE, not SET NULL: a code for a deleted automation must not turn
    -- into a code for every automation (and an automation with payments cannot be deleted).
    automation_id   BIGINT      REFERENCES automations (id) ON DELETE CASCADE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT discount_codes_code_normalized CHECK (code = lower(btrim(code)) AND code <> ''),
    CONSTRAINT discount_codes_percent_off_check CHECK (percent_off BETWEEN 1 AND 100),
    CONSTRAINT discount_codes_max_redemptions_check CHECK (max_redemptions IS NULL OR max_redemptions > 0),
    CONSTRAINT discount_codes_per_user_limit_check CHECK (per_user_limit IS NULL OR per_user_limit > 0),
    CONSTRAINT discount_codes_window_check
        CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE UNIQUE INDEX discount_codes_code_key ON discount_codes (code);
CREATE INDEX discount_codes_automation_id_idx ON discount_codes (automation_id) WHERE automation_id IS NOT NULL;

-- One per discounted payment. Reserved at init, confirmed on success, released on cancel,
-- failure or expiry; only reserved and confirmed count toward the limits.
CREATE TABLE discount_redemptions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    discount_id     BIGINT      NOT NULL REFERENCES discount_codes (id) ON DELETE RESTRICT,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    payment_id      BIGINT      NOT NULL UNIQUE REFERENCES payments (id) ON DELETE RESTRICT,
    status          TEXT        NOT NULL DEFAULT 'reserved',
    amount_before   BIGINT      NOT NULL,   -- Rials
    amount_discount BIGINT      NOT NULL,
    amount_after    BIGINT      NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT discount_redemptions_status_check CHECK (status IN ('reserved', 'confirmed', 'released')),
    CONSTRAINT discount_redemptions_amounts_check CHECK (
        amount_before > 0 AND amount_discount >= 0 AND amount_after >= 0
        AND amount_after = amount_before - amount_discount)
);
-- Counting toward max_redemptions and per_user_limit.
CREATE INDEX discount_redemptions_discount_status_idx ON discount_redemptions (discount_id, status);
CREATE INDEX discount_redemptions_discount_user_idx ON discount_redemptions (discount_id, user_id);
