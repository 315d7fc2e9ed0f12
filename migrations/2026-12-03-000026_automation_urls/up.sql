-- Vendor URLs shown and edited on the admin dashboard (docs/panels.md "Automations: vendor URLs").
-- Only the KB URLs are called by the platform; the others are stored and shown. Blank values are
-- stored as NULL by the marketplace, never as ''.
ALTER TABLE automations
    ADD COLUMN api_base_url       TEXT,
    ADD COLUMN api_usage_url      TEXT,
    ADD COLUMN api_kb_status_url  TEXT,
    ADD COLUMN api_kb_reset_url   TEXT,
    ADD COLUMN dashboard_url      TEXT,
    -- The last four characters of the current service token, for `service_token_masked`
    -- (`****` + tail). Set and cleared together with service_token_hash; the token itself is
    -- never stored.
    ADD COLUMN service_token_tail TEXT,
    ADD CONSTRAINT automations_service_token_tail_with_hash
        CHECK (service_token_tail IS NULL OR service_token_hash IS NOT NULL);
