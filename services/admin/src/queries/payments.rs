//! Payments of every user (billing's table, read only).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::billing::Payment,
    schema::{discount_redemptions, payments},
};

use super::paged;

#[derive(Debug, Default, Clone)]
pub struct PaymentFilter {
    /// Any of these (empty: every status).
    pub status: Vec<String>,
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

fn filtered(f: &PaymentFilter) -> payments::BoxedQuery<'static, Pg> {
    let any_status = (!f.status.is_empty()).then(|| f.status.clone());
    payments::table
        .into_boxed()
        .filter_some(any_status, |s| payments::status.eq_any(s))
        .filter_some(f.user_id, |u| payments::user_id.eq(u))
        .filter_some(f.automation_id, |a| payments::automation_id.eq(a))
        .filter_some(f.from, |from| payments::created_at.ge(from))
        .filter_some(f.to, |to| payments::created_at.lt(to))
}

/// Newest first, with the page's count and the sum of its succeeded amounts.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &PaymentFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Payment>, i64)> {
    let rows = filtered(f)
        .select(Payment::as_select())
        .order((payments::created_at.desc(), payments::id.desc()));
    paged(conn, filtered(f).count(), rows, offset, limit).await
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Payment>> {
    payments::table
        .find(id)
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

#[derive(Debug, Clone, Queryable)]
pub struct RedemptionRow {
    pub discount_id: i64,
    pub status: String,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub amount_after: i64,
}

pub async fn redemption_of(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
) -> QueryResult<Option<RedemptionRow>> {
    discount_redemptions::table
        .filter(discount_redemptions::payment_id.eq(payment_id))
        .select((
            discount_redemptions::discount_id,
            discount_redemptions::status,
            discount_redemptions::amount_before,
            discount_redemptions::amount_discount,
            discount_redemptions::amount_after,
        ))
        .first(conn)
        .await
        .optional()
}

/// `(payment id, automation id)` of the given payments (a discount code's redemptions list
/// names the automation bought).
pub async fn automations_of(
    conn: &mut AsyncPgConnection,
    payment_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    payments::table
        .filter(payments::id.eq_any(payment_ids))
        .select((payments::id, payments::automation_id))
        .load(conn)
        .await
}
