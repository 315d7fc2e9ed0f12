-- OpenAI keys belong to one automation, with a per-minute request limit, usage counters and a
-- failure count (docs/panels.md "OpenAI keys: per-automation limits and test").

-- Required for new keys by the API; null only for keys stored before this migration, which
-- are never leased until staff recreate them under an automation. SET NULL: deleting an
-- automation (marketplace, only when no customer has it) keeps the sealed key for the audit
-- trail instead of failing or erasing admin's row.
ALTER TABLE openai_keys
    ADD COLUMN automation_id BIGINT REFERENCES automations (id) ON DELETE SET NULL,
    ADD COLUMN rpm_limit BIGINT,
    -- used_requests_minute counts requests since minute_window_start; a lease in a later
    -- minute restarts the count (like used_today / usage_date), so no job resets it.
    ADD COLUMN used_requests_minute BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN minute_window_start TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN failure_count BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT openai_keys_rpm_limit_check CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    ADD CONSTRAINT openai_keys_used_requests_minute_check CHECK (used_requests_minute >= 0),
    ADD CONSTRAINT openai_keys_failure_count_check CHECK (failure_count >= 0);

ALTER TABLE openai_keys DROP CONSTRAINT openai_keys_status_check;
ALTER TABLE openai_keys ADD CONSTRAINT openai_keys_status_check
    CHECK (status IN ('active', 'disabled', 'exhausted', 'error'));

-- The alias is unique per automation (was global).
ALTER TABLE openai_keys DROP CONSTRAINT openai_keys_alias_key;
CREATE UNIQUE INDEX openai_keys_automation_alias_key ON openai_keys (automation_id, alias);
