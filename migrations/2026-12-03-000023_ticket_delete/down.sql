ALTER TABLE tickets DROP COLUMN deleted_at;
