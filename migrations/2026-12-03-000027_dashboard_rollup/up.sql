-- The admin dashboard's daily rollup (docs/data-model.md "admin"): per CLOSED UTC day, what
-- the dashboard and the analytics series would otherwise sum from the raw rows every time.
-- Written only by admin's rollup worker (services/admin/src/workers/rollup.rs), never by a
-- trigger: nothing is added to the ledger's or the payments' write path.
CREATE TABLE dashboard_daily (
    day                 DATE        PRIMARY KEY,
    -- Consumption entries of the ledger (demo and paid) created that day: -sum(delta +
    -- demo_delta), and how many entries.
    tokens_consumed     BIGINT      NOT NULL,
    consumption_entries BIGINT      NOT NULL,
    -- Succeeded payments verified that day: sum(amount) in Rials, and how many.
    revenue             BIGINT      NOT NULL,
    payments_succeeded  BIGINT      NOT NULL,
    -- Accounts created that day (deleted ones included, like the signups series).
    signups             BIGINT      NOT NULL,
    -- Payments (any status) and user automations created that day: with the rows created
    -- since, every row ever (none is ever deleted), from which the dashboard subtracts the
    -- few in a minority state.
    payments_created    BIGINT      NOT NULL,
    user_automations_created BIGINT NOT NULL,
    computed_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The one row saying how far the rollup goes. Every day before `closed_before` has its row in
-- dashboard_daily (NULL: nothing rolled up yet). The `*_max_id` columns are the highest id of
-- each source table the rollup saw (same snapshot as the sums): a row with a higher id and a
-- timestamp before `closed_before` came late (a back-dated insert, an import) and is added
-- by the readers until the next run folds it in.
CREATE TABLE dashboard_rollup_state (
    id              BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (id),
    closed_before   DATE,
    ledger_max_id   BIGINT      NOT NULL DEFAULT 0,
    payments_max_id BIGINT      NOT NULL DEFAULT 0,
    users_max_id    BIGINT      NOT NULL DEFAULT 0,
    user_automations_max_id BIGINT NOT NULL DEFAULT 0,
    computed_at     TIMESTAMPTZ
);
INSERT INTO dashboard_rollup_state DEFAULT VALUES;

-- The dashboard's counts of current states read only the minority of rows (the rest is the
-- total above minus them), each from a small partial index read index-only: the accounts
-- deactivated, the staff accounts by role, succeeded payments without a verification time
-- (none are expected: success sets it), the user automations not active. None touches the
-- consumption path: a balance update changes none of these columns, so it stays a HOT update.
CREATE INDEX users_inactive_idx ON users (id) WHERE NOT is_active AND deleted_at IS NULL;
CREATE INDEX users_staff_role_idx ON users (role) WHERE role <> 'customer' AND deleted_at IS NULL;
CREATE INDEX payments_succeeded_unverified_idx ON payments (id)
    WHERE status = 'succeeded' AND verified_at IS NULL;
CREATE INDEX user_automations_not_active_idx ON user_automations (status) WHERE status <> 'active';
-- Tickets by status, not deleted: index-only instead of reading the table.
CREATE INDEX tickets_live_status_idx ON tickets (status) WHERE deleted_at IS NULL;
-- User automations created per day (the rollup) and since the last closed day (the dashboard).
CREATE INDEX user_automations_created_at_idx ON user_automations (created_at);
