//! Opening a purchase: the price computed from the database, the discount code's slot
//! reserved, and the payment inserted, in one transaction. A 100 % discount needs no gateway:
//! the payment succeeds here and `payment.verified` goes to the outbox in the same transaction.
//! The connection is released before returning, so none is held across the gateway call.

use chrono::Utc;
use diesel_async::AsyncConnection;
use zimmer_db::models::billing::{
    NewDiscountRedemption, NewPayment, Payment, payment_status as ps, redemption_status as rs,
};
use zimmer_http::ApiError;

use super::settle::{self, Billing};
use crate::{
    clients::zarinpal::{MAX_AMOUNT, MIN_AMOUNT},
    domain::{self, DiscountRefusal},
    queries,
};

/// A validated purchase request.
pub struct Purchase<'a> {
    pub user_id: i64,
    pub automation_id: i64,
    pub tokens: i64,
    /// The discount code, normalised.
    pub code: Option<String>,
    pub return_path: Option<&'a str>,
}

/// The inserted payment and how its amount came about.
pub struct Priced {
    pub payment: Payment,
    pub amount_before: i64,
    pub amount_discount: i64,
}

/// 422 naming the code's problem; `code` is `discount_<reason>` for clients that branch on it.
pub fn discount_error(r: DiscountRefusal) -> ApiError {
    ApiError::invalid("discount_code", r.message()).with_code(format!("discount_{}", r.reason()))
}

/// Prices the purchase and inserts its payment (pending, or succeeded when nothing is left
/// to pay). Refusals (unknown automation, not for sale, discount refused, amount out of the
/// gateway's range) roll everything back, including a replaced reservation.
pub async fn open(billing: &Billing, purchase: Purchase<'_>) -> Result<Priced, ApiError> {
    let Purchase {
        user_id,
        automation_id,
        tokens,
        code,
        return_path,
    } = purchase;
    let min_age = chrono::Duration::from_std(billing.config.reconcile_min_age).unwrap_or_default();
    let mut conn = billing.pool.get().await?;
    conn.transaction(async |conn| {
        let automation = queries::automation_price(conn, automation_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Automation not found"))?;
        // "Not yours" and "absent" answer the same (docs/rbac.md).
        let (user_automation_id, ua_status) =
            queries::user_automation_of(conn, user_id, automation_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("You have not added this automation")
                        .with_code("automation_not_added")
                })?;
        if automation.status != "active" || ua_status == "canceled" {
            return Err(ApiError::conflict(
                "automation_unavailable",
                "This automation cannot be purchased now",
            ));
        }
        if automation.price_per_token <= 0 {
            return Err(ApiError::conflict(
                "not_for_sale",
                "This automation has no token price",
            ));
        }
        let amount_before = domain::price(tokens, automation.price_per_token)
            .ok_or_else(|| ApiError::invalid("tokens", "is too many for one payment"))?;

        // The code's row stays locked until commit: concurrent purchases with the same
        // code count and reserve one after the other.
        let mut discount = None;
        if let Some(code) = &code {
            let Some(d) = queries::lock_discount_by_code(conn, code).await? else {
                return Err(discount_error(DiscountRefusal::NotFound));
            };
            // One open reservation per user and code (so nobody can hold several slots of
            // a limited code): this purchase replaces the user's earlier unpaid one, whose
            // slot moves here. That earlier payment stays payable, so it still counts
            // toward the user's own limit: with `per_user_limit = 1` a second purchase is
            // refused while the first can be paid. If a replaced payment is paid anyway, its
            // discount is checked against the limits again then. A refusal below rolls the
            // replacement back with the rest.
            let replaced = queries::release_open_reservation(conn, d.id, user_id).await?;
            let mut usage = queries::discount_usage(conn, d.id, Some(user_id)).await?;
            usage.by_user += i64::try_from(replaced.len()).unwrap_or(i64::MAX);
            let scope = queries::discount_automations(conn, d.id).await?;
            domain::check_discount(&d, &scope, Some(automation_id), usage, Utc::now())
                .map_err(discount_error)?;
            if !replaced.is_empty() {
                tracing::info!(
                    discount_id = d.id,
                    ?replaced,
                    "a new purchase replaces the user's open reservation of the code"
                );
            }
            discount = Some(d);
        }
        let (amount_discount, amount) = match &discount {
            Some(d) => domain::apply_percent(amount_before, d.percent_off),
            None => (0, amount_before),
        };
        let free = amount == 0;
        if !free && !domain::amount_in_gateway_range(amount) {
            return Err(ApiError::invalid(
                "tokens",
                format!(
                    "the amount to pay must be between {MIN_AMOUNT} and {MAX_AMOUNT} Rial \
                     (it is {amount})"
                ),
            )
            .with_code("amount_out_of_range"));
        }
        let description = domain::description(tokens, &automation.name);
        let now = Utc::now();
        let meta = serde_json::json!({ "amount_before": amount_before });
        let payment = queries::insert_payment(
            conn,
            &NewPayment {
                user_id,
                automation_id,
                user_automation_id,
                amount,
                tokens_purchased: tokens,
                description: Some(&description),
                // A 100 % discount needs no gateway: it succeeds here, with the same event.
                status: if free { ps::SUCCEEDED } else { ps::PENDING },
                discount_code: discount.as_ref().map(|d| d.code.as_str()),
                discount_percent: discount.as_ref().map(|d| d.percent_off),
                return_path,
                next_check_at: (!free).then(|| now + min_age),
                verified_at: free.then_some(now),
                meta: &meta,
            },
        )
        .await?;
        if let Some(d) = &discount {
            queries::insert_redemption(
                conn,
                &NewDiscountRedemption {
                    discount_id: d.id,
                    user_id,
                    payment_id: payment.id,
                    status: if free { rs::CONFIRMED } else { rs::RESERVED },
                    amount_before,
                    amount_discount,
                    amount_after: amount,
                },
            )
            .await?;
        }
        if free {
            settle::enqueue_verified(conn, &payment).await?;
        }
        Ok::<_, ApiError>(Priced {
            payment,
            amount_before,
            amount_discount,
        })
    })
    .await
}
