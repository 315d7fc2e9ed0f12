//! Billing's database access. Every function takes the connection, so handlers compose them in
//! one transaction with the outbox insert of the event they cause. State changes of a payment
//! are single conditional statements (`UPDATE … WHERE status … RETURNING`), so of any number
//! of concurrent callers exactly one wins and the others see the row as it now is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    dsl::{count_star, now},
    prelude::*,
    sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    models::billing::{
        DiscountCode, DiscountRedemption, NewDiscountCode, NewDiscountRedemption, NewPayment,
        Payment, payment_status as ps, redemption_status as rs,
    },
    schema::{automations, discount_codes, discount_redemptions, payments, user_automations},
};

use crate::domain::Usage;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ------------------------------------------------------------------ marketplace reads

/// What a purchase needs of an automation (marketplace's table; billing only reads it).
#[derive(Debug, Clone, Queryable)]
pub struct AutomationPrice {
    pub id: i64,
    pub name: String,
    pub price_per_token: i64,
    pub status: String,
}

pub async fn automation_price(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
) -> QueryResult<Option<AutomationPrice>> {
    automations::table
        .find(automation_id)
        .select((
            automations::id,
            automations::name,
            automations::price_per_token,
            automations::status,
        ))
        .first(conn)
        .await
        .optional()
}

/// The caller's user_automation of this automation: `(id, status)`.
pub async fn user_automation_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
) -> QueryResult<Option<(i64, String)>> {
    user_automations::table
        .filter(user_automations::user_id.eq(user_id))
        .filter(user_automations::automation_id.eq(automation_id))
        .select((user_automations::id, user_automations::status))
        .first(conn)
        .await
        .optional()
}

// ------------------------------------------------------------------ discounts

pub async fn discount_by_code(
    conn: &mut AsyncPgConnection,
    code: &str,
) -> QueryResult<Option<DiscountCode>> {
    discount_codes::table
        .filter(discount_codes::code.eq(code))
        .select(DiscountCode::as_select())
        .first(conn)
        .await
        .optional()
}

/// The code's row, locked until the transaction ends: concurrent purchases with the same code
/// queue here, so counting and reserving are one step and a limit cannot be overrun.
pub async fn lock_discount_by_code(
    conn: &mut AsyncPgConnection,
    code: &str,
) -> QueryResult<Option<DiscountCode>> {
    discount_codes::table
        .filter(discount_codes::code.eq(code))
        .select(DiscountCode::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Reserved and confirmed redemptions of a code: in total and by one user.
pub async fn discount_usage(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
    user_id: Option<i64>,
) -> QueryResult<Usage> {
    let total: i64 = discount_redemptions::table
        .filter(discount_redemptions::discount_id.eq(discount_id))
        .filter(discount_redemptions::status.eq_any(rs::COUNTED))
        .select(count_star())
        .first(conn)
        .await?;
    let by_user = match user_id {
        None => 0,
        Some(uid) => {
            discount_redemptions::table
                .filter(discount_redemptions::discount_id.eq(discount_id))
                .filter(discount_redemptions::user_id.eq(uid))
                .filter(discount_redemptions::status.eq_any(rs::COUNTED))
                .select(count_star())
                .first(conn)
                .await?
        }
    };
    Ok(Usage { total, by_user })
}

/// Releases the user's open reservation of a code, if any (a new purchase with the same code
/// replaces it: one open reservation per user and code). Call with the code's row locked.
/// Returns the payment ids whose reservation was released.
pub async fn release_open_reservation(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
    user_id: i64,
) -> QueryResult<Vec<i64>> {
    diesel::update(
        discount_redemptions::table
            .filter(discount_redemptions::discount_id.eq(discount_id))
            .filter(discount_redemptions::user_id.eq(user_id))
            .filter(discount_redemptions::status.eq(rs::RESERVED)),
    )
    .set((
        discount_redemptions::status.eq(rs::RELEASED),
        discount_redemptions::updated_at.eq(now),
    ))
    .returning(discount_redemptions::payment_id)
    .get_results(conn)
    .await
}

pub async fn insert_redemption(
    conn: &mut AsyncPgConnection,
    new: &NewDiscountRedemption<'_>,
) -> QueryResult<()> {
    diesel::insert_into(discount_redemptions::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

/// What became of a paid payment's discount redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedemptionOutcome {
    /// The payment had no discount.
    None,
    Confirmed,
    /// Beyond the code's limits: recorded, the payment goes to review.
    OverLimit,
}

/// The redemption of a payment that was just verified as paid, in the success transaction.
///
/// A redemption still reserved held its slot since the purchase: confirmed. One that was
/// released (the payment had been canceled, expired or replaced by a newer purchase with the
/// same code) is confirmed only if the code's limits still allow it, counted under the code's
/// row lock like a purchase; if the payer's own newer reservation of the code is what stands in
/// the way, that reservation moves to this paid payment. Otherwise it is `over_limit`: the payer
/// is still credited, but never silently at a discount the code no longer had.
pub async fn settle_redemption(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
) -> QueryResult<RedemptionOutcome> {
    let Some(r) = discount_redemptions::table
        .filter(discount_redemptions::payment_id.eq(payment_id))
        .select(DiscountRedemption::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(RedemptionOutcome::None);
    };
    match r.status.as_str() {
        rs::CONFIRMED => return Ok(RedemptionOutcome::Confirmed),
        rs::OVER_LIMIT => return Ok(RedemptionOutcome::OverLimit),
        rs::RESERVED => {
            set_redemption_status(conn, r.id, rs::CONFIRMED).await?;
            return Ok(RedemptionOutcome::Confirmed);
        }
        _ => {}
    }
    // Released: count again, serialised with purchases by the code's row lock.
    let Some(code) = discount_codes::table
        .find(r.discount_id)
        .select(DiscountCode::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
    else {
        set_redemption_status(conn, r.id, rs::OVER_LIMIT).await?;
        return Ok(RedemptionOutcome::OverLimit);
    };
    let fits = |u: Usage| {
        code.max_redemptions.is_none_or(|m| u.total < i64::from(m))
            && code.per_user_limit.is_none_or(|l| u.by_user < i64::from(l))
    };
    let mut usage = discount_usage(conn, code.id, Some(r.user_id)).await?;
    if !fits(usage) {
        // The payer's own open reservation of this code (a newer, unpaid purchase) gives way to
        // the purchase actually paid; that one is re-checked in turn if it is paid later.
        let moved = release_open_reservation(conn, code.id, r.user_id).await?;
        if !moved.is_empty() {
            usage = discount_usage(conn, code.id, Some(r.user_id)).await?;
        }
    }
    if fits(usage) {
        set_redemption_status(conn, r.id, rs::CONFIRMED).await?;
        Ok(RedemptionOutcome::Confirmed)
    } else {
        set_redemption_status(conn, r.id, rs::OVER_LIMIT).await?;
        Ok(RedemptionOutcome::OverLimit)
    }
}

async fn set_redemption_status(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
) -> QueryResult<()> {
    diesel::update(discount_redemptions::table.find(id))
        .set((
            discount_redemptions::status.eq(status),
            discount_redemptions::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// A payment verified as paid whose discount was over the code's limits: credited (the payer
/// paid), but a person looks at it. Part of the success transaction.
pub async fn mark_over_limit(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<Payment>> {
    diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(ps::SUCCEEDED)),
    )
    .set((
        payments::status.eq(ps::NEEDS_REVIEW),
        payments::failure_reason.eq("discount_over_limit"),
        payments::updated_at.eq(now),
    ))
    .returning(Payment::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Released on cancel, failure or expiry: it stops counting toward the limits.
pub async fn release_redemption(conn: &mut AsyncPgConnection, payment_id: i64) -> QueryResult<()> {
    diesel::update(
        discount_redemptions::table
            .filter(discount_redemptions::payment_id.eq(payment_id))
            .filter(discount_redemptions::status.eq(rs::RESERVED)),
    )
    .set((
        discount_redemptions::status.eq(rs::RELEASED),
        discount_redemptions::updated_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(drop)
}

#[derive(Debug, Serialize, Queryable)]
pub struct DiscountStats {
    pub reserved: i64,
    pub confirmed: i64,
    pub released: i64,
    pub over_limit: i64,
}

pub async fn discount_stats(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
) -> QueryResult<DiscountStats> {
    let rows: Vec<(String, i64)> = discount_redemptions::table
        .filter(discount_redemptions::discount_id.eq(discount_id))
        .group_by(discount_redemptions::status)
        .select((discount_redemptions::status, count_star()))
        .load(conn)
        .await?;
    let get = |s: &str| {
        rows.iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(DiscountStats {
        reserved: get(rs::RESERVED),
        confirmed: get(rs::CONFIRMED),
        released: get(rs::RELEASED),
        over_limit: get(rs::OVER_LIMIT),
    })
}

pub async fn insert_discount(
    conn: &mut AsyncPgConnection,
    new: &NewDiscountCode<'_>,
) -> QueryResult<DiscountCode> {
    diesel::insert_into(discount_codes::table)
        .values(new)
        .returning(DiscountCode::as_returning())
        .get_result(conn)
        .await
}

pub async fn discount_by_id(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<DiscountCode>> {
    discount_codes::table
        .find(id)
        .select(DiscountCode::as_select())
        .first(conn)
        .await
        .optional()
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = discount_codes)]
pub struct DiscountChanges {
    pub code: Option<String>,
    pub percent_off: Option<i32>,
    pub active: Option<bool>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub max_redemptions: Option<Option<i32>>,
    pub per_user_limit: Option<Option<i32>>,
    pub automation_id: Option<Option<i64>>,
}

pub async fn update_discount(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &DiscountChanges,
) -> QueryResult<Option<DiscountCode>> {
    diesel::update(discount_codes::table.find(id))
        .set((changes, discount_codes::updated_at.eq(now)))
        .returning(DiscountCode::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete_discount(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(discount_codes::table.find(id))
        .execute(conn)
        .await
}

pub async fn list_discounts(
    conn: &mut AsyncPgConnection,
    search: Option<&str>,
    active: Option<bool>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<DiscountCode>, i64)> {
    let filtered = || {
        let mut q = discount_codes::table.into_boxed();
        if let Some(s) = search {
            let pattern = format!("%{}%", escape_like(&s.to_lowercase()));
            q = q.filter(discount_codes::code.like(pattern).escape('\\'));
        }
        if let Some(a) = active {
            q = q.filter(discount_codes::active.eq(a));
        }
        q
    };
    let total = filtered().count().get_result(conn).await?;
    let items = filtered()
        .order(discount_codes::id.desc())
        .offset(offset)
        .limit(limit)
        .select(DiscountCode::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn list_redemptions(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<DiscountRedemption>, i64)> {
    let total = discount_redemptions::table
        .filter(discount_redemptions::discount_id.eq(discount_id))
        .count()
        .get_result(conn)
        .await?;
    let items = discount_redemptions::table
        .filter(discount_redemptions::discount_id.eq(discount_id))
        .order(discount_redemptions::id.desc())
        .offset(offset)
        .limit(limit)
        .select(DiscountRedemption::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

// ------------------------------------------------------------------ payments: creation

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
        let mut q = payments::table.left_join(automations::table).into_boxed();
        if let Some(u) = filter.user_id {
            q = q.filter(payments::user_id.eq(u));
        }
        if let Some(a) = filter.automation_id {
            q = q.filter(payments::automation_id.eq(a));
        }
        if let Some(s) = &filter.status {
            q = q.filter(payments::status.eq(s.clone()));
        }
        if let Some(f) = filter.from {
            q = q.filter(payments::created_at.ge(f));
        }
        if let Some(t) = filter.to {
            q = q.filter(payments::created_at.lt(t));
        }
        q
    };
    let total = filtered().count().get_result(conn).await?;
    let mut q = filtered();
    q = if filter.ascending {
        q.order((payments::created_at.asc(), payments::id.asc()))
    } else {
        q.order((payments::created_at.desc(), payments::id.desc()))
    };
    let items = q
        .offset(offset)
        .limit(limit)
        .select((Payment::as_select(), automations::name.nullable()))
        .load(conn)
        .await?;
    Ok((items, total))
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

// ------------------------------------------------------------------ payments: transitions

/// The columns every claim sets. `status` on the right-hand side is the old value: the state the
/// payment was claimed from is kept in `meta.claimed_from` (a stale claim keeps the original).
const CLAIM_SET: &str = "status = 'verifying',
        verify_attempts = verify_attempts + 1,
        last_checked_at = now(),
        next_check_at = now() + $1 * interval '1 millisecond',
        updated_at = now(),
        meta = CASE WHEN status = 'verifying' THEN meta
                    ELSE meta || jsonb_build_object('claimed_from', status) END";

/// Claims the payment of `authority` for one verify: from one of `from` (or from a claim whose
/// lease ran out), unless it was checked less than `min_interval` ago (a replayed callback must
/// not make us hammer the gateway). None when someone else holds it or its state does not allow
/// it.
pub async fn claim_by_authority(
    conn: &mut AsyncPgConnection,
    authority: &str,
    from: &[&str],
    lease: Duration,
    min_interval: Duration,
) -> QueryResult<Option<Payment>> {
    diesel::sql_query(format!(
        "UPDATE payments SET {CLAIM_SET}
         WHERE authority = $2
           AND ((status = ANY($3)
                 AND (last_checked_at IS NULL
                      OR last_checked_at <= now() - $4 * interval '1 millisecond'))
                OR (status = 'verifying' AND next_check_at <= now()))
         RETURNING *"
    ))
    .bind::<BigInt, _>(millis(lease))
    .bind::<Text, _>(authority)
    .bind::<Array<Text>, _>(from)
    .bind::<BigInt, _>(millis(min_interval))
    .get_result(conn)
    .await
    .optional()
}

pub async fn claim_by_id(
    conn: &mut AsyncPgConnection,
    id: i64,
    from: &[&str],
    lease: Duration,
) -> QueryResult<Option<Payment>> {
    diesel::sql_query(format!(
        "UPDATE payments SET {CLAIM_SET}
         WHERE id = $2 AND authority IS NOT NULL
           AND (status = ANY($3) OR (status = 'verifying' AND next_check_at <= now()))
         RETURNING *"
    ))
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(id)
    .bind::<Array<Text>, _>(from)
    .get_result(conn)
    .await
    .optional()
}

/// The reconciler's batch: unfinished payments due for a look, oldest due first. SKIP LOCKED
/// lets two replicas take disjoint batches.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    batch: i64,
    lease: Duration,
) -> QueryResult<Vec<Payment>> {
    diesel::sql_query(format!(
        "UPDATE payments SET {CLAIM_SET}
         WHERE id IN (
             SELECT id FROM payments
             WHERE status IN ('pending', 'verifying') AND authority IS NOT NULL
               AND next_check_at <= now()
             ORDER BY next_check_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
           AND status IN ('pending', 'verifying')
         RETURNING *"
    ))
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(batch)
    .load(conn)
    .await
}

/// Claims the payments of `authorities` (from `unVerified.json`: paid, never verified) that are
/// older than `min_age` and not succeeded or under review, closed ones included.
pub async fn claim_unverified(
    conn: &mut AsyncPgConnection,
    authorities: &[String],
    min_age: Duration,
    lease: Duration,
) -> QueryResult<Vec<Payment>> {
    diesel::sql_query(format!(
        "UPDATE payments SET {CLAIM_SET}
         WHERE authority = ANY($2)
           AND created_at <= now() - $3 * interval '1 millisecond'
           AND (status IN ('pending', 'canceled', 'expired', 'failed')
                OR (status = 'verifying' AND next_check_at <= now()))
         RETURNING *"
    ))
    .bind::<BigInt, _>(millis(lease))
    .bind::<Array<Text>, _>(authorities)
    .bind::<BigInt, _>(millis(min_age))
    .load(conn)
    .await
}

/// Success, at most once: only a payment that is not already succeeded (or under review)
/// changes. Money taken is honoured even when the payment had been closed (a late payer).
pub async fn mark_succeeded(
    conn: &mut AsyncPgConnection,
    id: i64,
    ref_id: Option<i64>,
    card_pan: Option<&str>,
    verify_code: i64,
) -> QueryResult<Option<Payment>> {
    diesel::sql_query(
        "UPDATE payments SET status = 'succeeded',
                ref_id = COALESCE($2, ref_id),
                card_pan = COALESCE($3, card_pan),
                verified_at = now(), updated_at = now(), next_check_at = NULL,
                failure_reason = NULL,
                meta = meta || jsonb_build_object('verify_code', $4::bigint)
         WHERE id = $1 AND status IN ('pending', 'verifying', 'canceled', 'expired', 'failed')
         RETURNING *",
    )
    .bind::<BigInt, _>(id)
    .bind::<Nullable<BigInt>, _>(ref_id)
    .bind::<Nullable<Text>, _>(card_pan)
    .bind::<BigInt, _>(verify_code)
    .get_result(conn)
    .await
    .optional()
}

/// Ends a claim with a status other than success, fenced by the claim's attempt number: a
/// claimer whose lease ran out and was taken over changes nothing.
pub async fn finish_claim(
    conn: &mut AsyncPgConnection,
    id: i64,
    attempt: i32,
    status: &str,
    reason: Option<&str>,
    next_check_in: Option<Duration>,
    meta: &serde_json::Value,
) -> QueryResult<Option<Payment>> {
    diesel::sql_query(
        "UPDATE payments SET status = $3,
                failure_reason = COALESCE($4, failure_reason),
                next_check_at = CASE WHEN $5 THEN now() + $6 * interval '1 millisecond' END,
                updated_at = now(),
                meta = meta || $7
         WHERE id = $1 AND status = 'verifying' AND verify_attempts = $2
         RETURNING *",
    )
    .bind::<BigInt, _>(id)
    .bind::<Integer, _>(attempt)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Bool, _>(next_check_in.is_some())
    .bind::<BigInt, _>(next_check_in.map(millis).unwrap_or(0))
    .bind::<Jsonb, _>(meta)
    .get_result(conn)
    .await
    .optional()
}

/// Counts for `/metrics`: unfinished payments by status.
pub async fn unfinished_counts(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, i64)>> {
    payments::table
        .filter(payments::status.eq_any([ps::PENDING, ps::VERIFYING, ps::NEEDS_REVIEW]))
        .group_by(payments::status)
        .select((payments::status, count_star()))
        .load(conn)
        .await
}
