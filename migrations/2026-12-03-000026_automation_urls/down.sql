ALTER TABLE automations
    DROP CONSTRAINT automations_service_token_tail_with_hash,
    DROP COLUMN service_token_tail,
    DROP COLUMN dashboard_url,
    DROP COLUMN api_kb_reset_url,
    DROP COLUMN api_kb_status_url,
    DROP COLUMN api_usage_url,
    DROP COLUMN api_base_url;
