-- Indexes for admin's queries (checked with EXPLAIN on 100k users / 300k payments / 1M ledger
-- rows, bench/admin/), and the key that keeps a retried admin action to one audit entry.

-- Revenue (dashboard totals, this month, today, the daily series) is money received:
-- succeeded payments by verified_at. Index-only with the amount included.
CREATE INDEX payments_succeeded_verified_idx ON payments (verified_at) INCLUDE (amount)
    WHERE status = 'succeeded';

-- The admin payments list, newest first, with no filter or only a date window.
CREATE INDEX payments_created_at_idx ON payments (created_at);

-- Tokens consumed today / 30 days and the daily usage series read only consumption entries;
-- with the deltas included they are index-only range scans instead of heap visits.
CREATE INDEX token_ledger_consumption_created_idx ON token_ledger (created_at)
    INCLUDE (delta, demo_delta) WHERE kind = 'consumption';

-- The tickets overview, most recently active first.
CREATE INDEX tickets_updated_at_idx ON tickets (updated_at);

-- An admin action retried with the same idempotency key (e.g. a token adjustment) is
-- recorded once: INSERT … ON CONFLICT DO NOTHING against this index.
CREATE UNIQUE INDEX admin_audit_log_idempotency_key
    ON admin_audit_log (action, (details ->> 'idempotency_key'))
    WHERE (details ->> 'idempotency_key') IS NOT NULL;

-- Staff search users by any part of the email, name or phone number (ILIKE '%…%'). Without
-- these a search reads all 100k rows (~0.3 s); with them it is a bitmap OR of three trigram
-- index scans (~3 ms). pg_trgm is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_name_trgm_idx ON users USING gin (name gin_trgm_ops);
CREATE INDEX users_phone_trgm_idx ON users USING gin (phone_number gin_trgm_ops);
