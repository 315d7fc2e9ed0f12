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

use diesel::{
    QueryResult,
    query_dsl::methods::{LimitDsl, OffsetDsl},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, methods::LoadQuery};

/// One page of a list and how many rows match in all: `count` is the list's filter counted,
/// `rows` the same filter selected in the list's order.
pub async fn paged<'q, T: Send + 'static>(
    conn: &mut AsyncPgConnection,
    count: impl LoadQuery<'q, AsyncPgConnection, i64> + 'q,
    rows: impl OffsetDsl<Output: LimitDsl<Output: LoadQuery<'q, AsyncPgConnection, T> + 'q>>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<T>, i64)> {
    let total = count.get_result(conn).await?;
    let rows = rows.offset(offset).limit(limit).load(conn).await?;
    Ok((rows, total))
}

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
