-- The KB monitoring history of the marketplace (docs/panels.md "KB monitoring: status, reset,
-- history"): one row per customer each time staff ask an automation's vendor for the state of
-- its customers' knowledge bases. Written only by the marketplace; the admin dashboard lists,
-- counts and charts it per UTC day. Monitoring data: it goes with the user automation (or
-- automation, or user) it describes rather than keeping them from being removed.
CREATE TABLE kb_status_history (
    id                 BIGSERIAL   PRIMARY KEY,
    user_id            BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_automation_id BIGINT      NOT NULL REFERENCES user_automations (id) ON DELETE CASCADE,
    -- Denormalised from the user automation for the history filters.
    automation_id      BIGINT      NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    kb_health          TEXT        NOT NULL
        CONSTRAINT kb_status_history_kb_health_check
        CHECK (kb_health IN ('healthy', 'warning', 'problematic', 'error')),
    backup_status      BOOLEAN     NOT NULL DEFAULT false,
    supports_reset     BOOLEAN     NOT NULL DEFAULT false,
    -- The vendor's error lines (or why it could not be asked): always a JSON array of strings.
    error_logs         JSONB       NOT NULL DEFAULT '[]'::jsonb
        CONSTRAINT kb_status_history_error_logs_check CHECK (jsonb_typeof(error_logs) = 'array'),
    checked_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX kb_status_history_automation_checked_idx
    ON kb_status_history (automation_id, checked_at);
CREATE INDEX kb_status_history_user_automation_checked_idx
    ON kb_status_history (user_automation_id, checked_at);
-- The history tab's `user_id` filter.
CREATE INDEX kb_status_history_user_checked_idx ON kb_status_history (user_id, checked_at);
