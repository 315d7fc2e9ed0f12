//! Database access of admin. Admin READS every table (dashboards and lists) and WRITES only its
//! own (`openai_keys`, `admin_audit_log`) and the outbox. Every function takes
//! `&mut AsyncPgConnection`, so a handler composes its writes and the audit entry (and an
//! outbox row) into one transaction.

pub mod audit;
pub mod automations;
pub mod backups;
pub mod keys;
pub mod ledger;
pub mod payments;
pub mod stats;
pub mod tickets;
pub mod user_automations;
pub mod users;

pub use zimmer_db::paged;

/// Each row with its count among `counts` (`(row id, n)` pairs, as a `GROUP BY` loads them;
/// 0 for a row without any).
pub fn with_counts<T>(
    rows: Vec<T>,
    counts: &[(i64, i64)],
    id: impl Fn(&T) -> i64,
) -> Vec<(T, i64)> {
    rows.into_iter()
        .map(|row| {
            let n = counts
                .iter()
                .find(|(of, _)| *of == id(&row))
                .map_or(0, |(_, n)| *n);
            (row, n)
        })
        .collect()
}
