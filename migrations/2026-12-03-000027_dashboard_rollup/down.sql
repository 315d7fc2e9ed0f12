DROP INDEX user_automations_created_at_idx;
DROP INDEX user_automations_not_active_idx;
DROP INDEX tickets_live_status_idx;
DROP INDEX payments_succeeded_unverified_idx;
DROP INDEX users_staff_role_idx;
DROP INDEX users_inactive_idx;
DROP TABLE dashboard_rollup_state;
DROP TABLE dashboard_daily;
