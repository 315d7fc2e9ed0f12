DROP INDEX users_deleted_at_idx;
ALTER TABLE users DROP CONSTRAINT users_deleted_is_inactive, DROP COLUMN deleted_at;
