-- When an account was deleted (anonymised): by its owner (`DELETE /api/auth/delete-account`) or
-- permanently by a manager (docs/panels.md "Users: the managers list and permanent delete").
-- The row stays (payments, ledger and tickets keep the id); deleted accounts leave every user
-- list and count. A deleted account is always deactivated too.
ALTER TABLE users
    ADD COLUMN deleted_at TIMESTAMPTZ,
    ADD CONSTRAINT users_deleted_is_inactive CHECK (deleted_at IS NULL OR NOT is_active);

-- Accounts anonymised before this column existed carry the placeholder address.
UPDATE users SET deleted_at = coalesce(deactivated_at, updated_at)
WHERE email LIKE 'deleted-%@deleted.invalid' AND NOT is_active;

-- Few rows: the lists filter `deleted_at IS NULL` and the counts skip the deleted ones.
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;
