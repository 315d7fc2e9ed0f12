DROP INDEX IF EXISTS openai_keys_automation_alias_key;
-- Aliases repeated across automations cannot be globally unique again: suffix the later ones.
UPDATE openai_keys k SET alias = k.alias || '-' || k.id
WHERE EXISTS (SELECT 1 FROM openai_keys o WHERE o.alias = k.alias AND o.id < k.id);
ALTER TABLE openai_keys ADD CONSTRAINT openai_keys_alias_key UNIQUE (alias);

UPDATE openai_keys SET status = 'disabled' WHERE status = 'error';
ALTER TABLE openai_keys DROP CONSTRAINT openai_keys_status_check;
ALTER TABLE openai_keys ADD CONSTRAINT openai_keys_status_check
    CHECK (status IN ('active', 'disabled', 'exhausted'));

ALTER TABLE openai_keys
    DROP CONSTRAINT IF EXISTS openai_keys_failure_count_check,
    DROP CONSTRAINT IF EXISTS openai_keys_used_requests_minute_check,
    DROP CONSTRAINT IF EXISTS openai_keys_rpm_limit_check,
    DROP COLUMN failure_count,
    DROP COLUMN minute_window_start,
    DROP COLUMN used_requests_minute,
    DROP COLUMN rpm_limit,
    DROP COLUMN automation_id;
