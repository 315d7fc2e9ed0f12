DROP INDEX IF EXISTS users_phone_trgm_idx;
DROP INDEX IF EXISTS users_name_trgm_idx;
DROP INDEX IF EXISTS users_email_trgm_idx;
-- pg_trgm stays: it may have been installed before this migration, and it is harmless.
DROP INDEX IF EXISTS admin_audit_log_idempotency_key;
DROP INDEX IF EXISTS tickets_updated_at_idx;
DROP INDEX IF EXISTS token_ledger_consumption_created_idx;
DROP INDEX IF EXISTS payments_created_at_idx;
DROP INDEX IF EXISTS payments_succeeded_verified_idx;
