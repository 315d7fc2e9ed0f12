-- Knowledge base entries, KB templates and the fallback log (docs/panels.md "Knowledge base
-- entries", "KB templates", "Fallback log"; docs/data-model.md). Owned by the marketplace: staff
-- write them through its internal API, vendors read the knowledge and report fallbacks with
-- their service token.

-- A canned answer staff keep for one customer under a category; the customer's automations
-- read them (GET /api/automation-usage/knowledge).
CREATE TABLE knowledge_entries (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- RESTRICT: accounts are anonymised, never deleted (docs/data-model.md).
    client_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    category   TEXT        NOT NULL,
    answer     TEXT        NOT NULL,
    -- The staff member who wrote it; NO ACTION keeps the trail.
    created_by BIGINT      REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Lengths in characters; the marketplace trims and checks them first (422 with a field).
    CONSTRAINT knowledge_entries_category_len CHECK (char_length(category) BETWEEN 1 AND 100),
    CONSTRAINT knowledge_entries_answer_len CHECK (char_length(answer) BETWEEN 1 AND 5000)
);
-- The customer filter (and a customer's entries for vendors), by category within it.
CREATE INDEX knowledge_entries_client_category_idx ON knowledge_entries (client_id, category);
-- The category filter is a case-insensitive substring (the page filters on every keystroke):
-- ILIKE '%…%' uses a trigram index (pg_trgm, created by 000006_admin_indexes).
CREATE INDEX knowledge_entries_category_trgm_idx
    ON knowledge_entries USING gin (category gin_trgm_ops);

-- A starter question/answer pair shared by every customer of one automation.
CREATE TABLE kb_templates (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- CASCADE: an automation is deleted only when no customer has it, and its templates go
    -- with it (otherwise it is unlisted and keeps them).
    automation_id BIGINT      NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    -- NULL = none ("" is stored as NULL).
    category      TEXT,
    question      TEXT        NOT NULL,
    answer        TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT kb_templates_category_len
        CHECK (category IS NULL OR char_length(category) BETWEEN 1 AND 100),
    CONSTRAINT kb_templates_question_len CHECK (char_length(question) BETWEEN 1 AND 500),
    CONSTRAINT kb_templates_answer_len CHECK (char_length(answer) BETWEEN 1 AND 5000)
);
CREATE INDEX kb_templates_automation_id_idx ON kb_templates (automation_id);
CREATE INDEX kb_templates_category_trgm_idx ON kb_templates USING gin (category gin_trgm_ops);

-- A customer's message the automation could not answer, reported by its vendor for staff to
-- follow up.
CREATE TABLE fallback_logs (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_automation_id BIGINT      NOT NULL REFERENCES user_automations (id) ON DELETE RESTRICT,
    -- Denormalised from the user automation for the filters.
    user_id            BIGINT      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    automation_id      BIGINT      NOT NULL REFERENCES automations (id) ON DELETE RESTRICT,
    message            TEXT        NOT NULL,
    error_type         TEXT,
    status             TEXT        NOT NULL DEFAULT 'open',
    -- The vendor's idempotency key: a repeated report is stored once (per automation, as
    -- consumption keys are).
    idempotency_key    TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at        TIMESTAMPTZ,
    resolved_by        BIGINT      REFERENCES users (id),
    CONSTRAINT fallback_logs_message_len CHECK (char_length(message) BETWEEN 1 AND 4000),
    CONSTRAINT fallback_logs_error_type_len
        CHECK (error_type IS NULL OR char_length(error_type) BETWEEN 1 AND 64),
    CONSTRAINT fallback_logs_status_check CHECK (status IN ('open', 'resolved')),
    CONSTRAINT fallback_logs_resolved_check CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT fallback_logs_idempotency_key_len
        CHECK (idempotency_key IS NULL OR char_length(idempotency_key) BETWEEN 1 AND 200),
    -- NULL keys are distinct, so reports without a key are never merged.
    CONSTRAINT fallback_logs_idempotency_key UNIQUE (automation_id, idempotency_key)
);
-- The customer filter, newest first; and the unfiltered list.
CREATE INDEX fallback_logs_user_created_idx ON fallback_logs (user_id, created_at);
CREATE INDEX fallback_logs_created_at_idx ON fallback_logs (created_at);
