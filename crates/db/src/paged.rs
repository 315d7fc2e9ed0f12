//! The paged lists of every service: one page of rows and how many match in all.

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
