//! Discount codes and their redemptions.

use chrono::{DateTime, Utc};
use diesel::{
    dsl::{AsSelect, count_star, now},
    pg::Pg,
    prelude::*,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use zimmer_db::{
    FilterSome,
    models::billing::{
        DiscountCode, DiscountRedemption, NewDiscountCode, NewDiscountRedemption, Payment,
        payment_status as ps, redemption_status as rs,
    },
    schema::{
        automations, discount_code_automations, discount_codes, discount_redemptions, payments,
    },
};

use crate::domain::Usage;

/// The row of the code `code`.
#[diesel::dsl::auto_type(no_type_alias)]
fn with_code<'a>(code: &'a str) -> _ {
    let row: AsSelect<DiscountCode, Pg> = DiscountCode::as_select();
    discount_codes::table
        .filter(discount_codes::code.eq(code))
        .select(row)
}

pub async fn discount_by_code(
    conn: &mut AsyncPgConnection,
    code: &str,
) -> QueryResult<Option<DiscountCode>> {
    with_code(code).first(conn).await.optional()
}

/// The code's row, locked until the transaction ends: concurrent purchases with the same code
/// queue here, so counting and reserving are one step and a limit cannot be overrun.
pub async fn lock_discount_by_code(
    conn: &mut AsyncPgConnection,
    code: &str,
) -> QueryResult<Option<DiscountCode>> {
    with_code(code).for_update().first(conn).await.optional()
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
    pub description: Option<Option<String>>,
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
        discount_codes::table
            .into_boxed()
            .filter_some(search, |s| {
                let pattern = zimmer_db::contains_pattern(&s.to_lowercase());
                discount_codes::code.like(pattern).escape('\\')
            })
            .filter_some(active, |a| discount_codes::active.eq(a))
    };
    let rows = filtered()
        .order(discount_codes::id.desc())
        .select(DiscountCode::as_select());
    zimmer_db::paged(conn, filtered().count(), rows, offset, limit).await
}

pub async fn list_redemptions(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<DiscountRedemption>, i64)> {
    let of_code =
        discount_redemptions::table.filter(discount_redemptions::discount_id.eq(discount_id));
    let rows = of_code
        .order(discount_redemptions::id.desc())
        .select(DiscountRedemption::as_select());
    zimmer_db::paged(conn, of_code.count(), rows, offset, limit).await
}

/// The code's automations (docs/panels.md "Discount codes for several automations"): empty
/// means every automation.
pub async fn discount_automations(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
) -> QueryResult<Vec<i64>> {
    discount_code_automations::table
        .filter(discount_code_automations::discount_id.eq(discount_id))
        .select(discount_code_automations::automation_id)
        .order(discount_code_automations::automation_id)
        .load(conn)
        .await
}

/// The automations of several codes at once (a list page): `(discount_id, automation_id)`.
pub async fn automations_of_discounts(
    conn: &mut AsyncPgConnection,
    discount_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    discount_code_automations::table
        .filter(discount_code_automations::discount_id.eq_any(discount_ids))
        .select((
            discount_code_automations::discount_id,
            discount_code_automations::automation_id,
        ))
        .order((
            discount_code_automations::discount_id,
            discount_code_automations::automation_id,
        ))
        .load(conn)
        .await
}

/// Replaces the code's set of automations (in the caller's transaction).
pub async fn set_discount_automations(
    conn: &mut AsyncPgConnection,
    discount_id: i64,
    automation_ids: &[i64],
) -> QueryResult<()> {
    diesel::delete(
        discount_code_automations::table
            .filter(discount_code_automations::discount_id.eq(discount_id)),
    )
    .execute(conn)
    .await?;
    if automation_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = automation_ids
        .iter()
        .map(|a| {
            (
                discount_code_automations::discount_id.eq(discount_id),
                discount_code_automations::automation_id.eq(*a),
            )
        })
        .collect();
    diesel::insert_into(discount_code_automations::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Which of `ids` name an existing automation.
pub async fn existing_automations(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<Vec<i64>> {
    automations::table
        .filter(automations::id.eq_any(ids))
        .select(automations::id)
        .load(conn)
        .await
}
