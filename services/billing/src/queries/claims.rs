//! Payments: state transitions, each one conditional statement (a claim, then its outcome).

use std::time::Duration;

use diesel::{
    dsl::count_star,
    prelude::*,
    sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::billing::{Payment, payment_status as ps},
    schema::payments,
};

use super::millis;

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
