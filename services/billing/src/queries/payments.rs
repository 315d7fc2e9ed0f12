//! Payments: creation and reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    dsl::now,
    prelude::*,
    sql_types::{BigInt, Integer, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    FilterSome,
    models::billing::{NewPayment, Payment, payment_status as ps},
    schema::{automations, payments},
};

use super::discounts::release_redemption;

use super::millis;

pub async fn insert_payment(
    conn: &mut AsyncPgConnection,
    new: &NewPayment<'_>,
) -> QueryResult<Payment> {
    diesel::insert_into(payments::table)
        .values(new)
        .returning(Payment::as_returning())
        .get_result(conn)
        .await
}

/// Records the gateway's authority on a payment still waiting for it.
pub async fn set_authority(
    conn: &mut AsyncPgConnection,
    id: i64,
    authority: &str,
) -> QueryResult<Option<Payment>> {
    diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(ps::PENDING))
            .filter(payments::authority.is_null()),
    )
    .set((
        payments::authority.eq(authority),
        // The gateway's id of the transaction, as the panel lists it.
        payments::transaction_id.eq(authority),
        payments::updated_at.eq(now),
    ))
    .returning(Payment::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// A payment the gateway never opened a session for: failed, its redemption released.
pub async fn fail_unrequested(
    conn: &mut AsyncPgConnection,
    id: i64,
    reason: &str,
) -> QueryResult<Option<Payment>> {
    let p = diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(ps::PENDING))
            .filter(payments::authority.is_null()),
    )
    .set((
        payments::status.eq(ps::FAILED),
        payments::failure_reason.eq(reason),
        payments::next_check_at.eq(None::<DateTime<Utc>>),
        payments::updated_at.eq(now),
    ))
    .returning(Payment::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    if p.is_some() {
        release_redemption(conn, id).await?;
    }
    Ok(p)
}

/// Pending payments that never got an authority (the process died between the insert and the
/// gateway's answer): nobody can pay them, so they expire. Returns their ids.
pub async fn expire_unrequested(
    conn: &mut AsyncPgConnection,
    older_than: Duration,
) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let ids: Vec<Id> = diesel::sql_query(
        "WITH expired AS (
             UPDATE payments SET status = 'expired', failure_reason = 'no_gateway_session',
                    next_check_at = NULL, updated_at = now()
             WHERE status = 'pending' AND authority IS NULL
               AND created_at < now() - $1 * interval '1 millisecond'
             RETURNING id)
         , released AS (
             UPDATE discount_redemptions SET status = 'released', updated_at = now()
             WHERE status = 'reserved' AND payment_id IN (SELECT id FROM expired)
             RETURNING id)
         SELECT id FROM expired",
    )
    .bind::<BigInt, _>(millis(older_than))
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|r| r.id).collect())
}

// ------------------------------------------------------------------ payments: reads

pub async fn payment_by_authority(
    conn: &mut AsyncPgConnection,
    authority: &str,
) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::authority.eq(authority))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn payment_by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Payment>> {
    payments::table
        .find(id)
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

/// A payment with the name of its automation (for the history).
pub type PaymentWithName = (Payment, Option<String>);

pub async fn user_payment(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<PaymentWithName>> {
    payments::table
        .left_join(automations::table)
        .filter(payments::id.eq(id))
        .filter(payments::user_id.eq(user_id))
        .select((Payment::as_select(), automations::name.nullable()))
        .first(conn)
        .await
        .optional()
}

#[derive(Debug, Default, Clone)]
pub struct PaymentFilter {
    pub user_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub ascending: bool,
}

pub async fn list_payments(
    conn: &mut AsyncPgConnection,
    filter: &PaymentFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<PaymentWithName>, i64)> {
    let filtered = || {
        payments::table
            .left_join(automations::table)
            .into_boxed()
            .filter_some(filter.user_id, |u| payments::user_id.eq(u))
            .filter_some(filter.automation_id, |a| payments::automation_id.eq(a))
            .filter_some(filter.status.clone(), |s| payments::status.eq(s))
            .filter_some(filter.from, |f| payments::created_at.ge(f))
            .filter_some(filter.to, |t| payments::created_at.lt(t))
    };
    let ordered = if filter.ascending {
        filtered().order((payments::created_at.asc(), payments::id.asc()))
    } else {
        filtered().order((payments::created_at.desc(), payments::id.desc()))
    };
    let rows = ordered.select((Payment::as_select(), automations::name.nullable()));
    zimmer_db::paged(conn, filtered().count(), rows, offset, limit).await
}

#[derive(Debug, Serialize, QueryableByName)]
pub struct MonthPoint {
    #[diesel(sql_type = Text)]
    pub month: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens: i64,
}

/// Spent and tokens bought per calendar month (UTC) over the last `months`, zero months
/// included, oldest first.
pub async fn monthly_spend(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    months: i32,
) -> QueryResult<Vec<MonthPoint>> {
    diesel::sql_query(
        "WITH m AS (
             SELECT generate_series(
                 date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $2 - 1),
                 date_trunc('month', now() AT TIME ZONE 'UTC'),
                 interval '1 month') AS start)
         SELECT to_char(m.start, 'YYYY-MM') AS month,
                COALESCE(sum(p.amount), 0)::bigint AS amount,
                COALESCE(sum(p.tokens_purchased), 0)::bigint AS tokens
         FROM m
         LEFT JOIN payments p
           ON p.user_id = $1 AND p.status = 'succeeded'
          AND p.created_at >= m.start AT TIME ZONE 'UTC'
          AND p.created_at < (m.start + interval '1 month') AT TIME ZONE 'UTC'
         GROUP BY m.start
         ORDER BY m.start",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Integer, _>(months)
    .load(conn)
    .await
}

#[derive(Debug, Serialize, QueryableByName)]
pub struct StatusTotals {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens: i64,
}

pub async fn totals_by_status(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<StatusTotals>> {
    diesel::sql_query(
        "SELECT status, count(*)::bigint AS count, COALESCE(sum(amount), 0)::bigint AS amount,
                COALESCE(sum(tokens_purchased), 0)::bigint AS tokens
         FROM payments WHERE user_id = $1 GROUP BY status",
    )
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .await
}
