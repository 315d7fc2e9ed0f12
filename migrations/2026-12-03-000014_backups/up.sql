-- The backup log of admin: one row per PostgreSQL backup run (pg_dump custom-format archive in
-- BACKUP_DIR). A run is inserted as `running` and finished as `success` or `failed`; runs in
-- progress are not listed. `file_path` is relative to BACKUP_DIR and never leaves the service.
CREATE TABLE backup_logs (
    id BIGSERIAL PRIMARY KEY,
    backup_date TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    database_name TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    file_size BIGINT NOT NULL DEFAULT 0 CHECK (file_size >= 0),
    checksum_sha256 TEXT CHECK (checksum_sha256 ~ '^[0-9a-f]{64}$'),
    status TEXT NOT NULL DEFAULT 'running'
        CONSTRAINT backup_logs_status_check CHECK (status IN ('running', 'success', 'failed')),
    error TEXT,
    storage_location TEXT NOT NULL DEFAULT 'local',
    verified BOOLEAN NOT NULL DEFAULT false,
    verified_at TIMESTAMPTZ,
    verify_method TEXT CONSTRAINT backup_logs_verify_method_check
        CHECK (verify_method IN ('list', 'restore')),
    trigger TEXT NOT NULL CONSTRAINT backup_logs_trigger_check
        CHECK (trigger IN ('manual', 'scheduled')),
    -- The staff member who triggered it; null for scheduled runs (and kept if they are deleted).
    actor_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX backup_logs_backup_date_idx ON backup_logs (backup_date);
