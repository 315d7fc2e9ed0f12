-- A deleted ticket is hidden, not removed: it leaves every list, count and view for customers
-- and staff, while its messages and attachments stay for audit (docs/panels.md "Ticket delete").
ALTER TABLE tickets ADD COLUMN deleted_at TIMESTAMPTZ;
