//! Rows of the billing service's tables (schema.rs). Owned by that service: only it writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{discount_codes, discount_redemptions, payments};

/// Payment statuses (the `payments_status_check` constraint).
pub mod payment_status {
    pub const PENDING: &str = "pending";
    pub const VERIFYING: &str = "verifying";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const CANCELED: &str = "canceled";
    pub const EXPIRED: &str = "expired";
    pub const NEEDS_REVIEW: &str = "needs_review";
    pub const ALL: [&str; 7] = [
        PENDING,
        VERIFYING,
        SUCCEEDED,
        FAILED,
        CANCELED,
        EXPIRED,
        NEEDS_REVIEW,
    ];
}

/// Redemption statuses. Reserved and confirmed count toward a code's limits; released and
/// over-limit do not (an over-limit one is an exception for staff, not a use of the quota, so
/// confirmed never exceeds the limits). A user holds at most one reserved redemption per code
/// (a partial unique index).
pub mod redemption_status {
    pub const RESERVED: &str = "reserved";
    pub const CONFIRMED: &str = "confirmed";
    pub const RELEASED: &str = "released";
    /// Paid after its reservation was released, when the code's limits were already used up:
    /// the payer is credited, the payment goes to `needs_review`.
    pub const OVER_LIMIT: &str = "over_limit";
    /// The statuses that use up a code's limits.
    pub const COUNTED: [&str; 2] = [RESERVED, CONFIRMED];
}

/// Also `QueryableByName`, so the conditional `UPDATE … RETURNING *` statements written in SQL
/// load the same struct.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = payments)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    pub user_automation_id: i64,
    pub amount: i64,
    pub tokens_purchased: i64,
    pub method: String,
    pub gateway: String,
    pub description: Option<String>,
    pub transaction_id: Option<String>,
    pub authority: Option<String>,
    pub ref_id: Option<i64>,
    pub card_pan: Option<String>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub discount_code: Option<String>,
    pub discount_percent: Option<i32>,
    pub return_path: Option<String>,
    pub verify_attempts: i32,
    pub next_check_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = payments)]
pub struct NewPayment<'a> {
    pub user_id: i64,
    pub automation_id: i64,
    pub user_automation_id: i64,
    pub amount: i64,
    pub tokens_purchased: i64,
    pub description: Option<&'a str>,
    pub status: &'a str,
    pub discount_code: Option<&'a str>,
    pub discount_percent: Option<i32>,
    pub return_path: Option<&'a str>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub meta: &'a serde_json::Value,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = discount_codes)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct DiscountCode {
    pub id: i64,
    pub code: String,
    pub percent_off: i32,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub description: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = discount_codes)]
pub struct NewDiscountCode<'a> {
    pub code: &'a str,
    pub percent_off: i32,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub description: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = discount_redemptions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct DiscountRedemption {
    pub id: i64,
    pub discount_id: i64,
    pub user_id: i64,
    pub payment_id: i64,
    pub status: String,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub amount_after: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = discount_redemptions)]
pub struct NewDiscountRedemption<'a> {
    pub discount_id: i64,
    pub user_id: i64,
    pub payment_id: i64,
    pub status: &'a str,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub amount_after: i64,
}
