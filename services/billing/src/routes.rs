use utoipa::ToSchema;
use zimmer_http::{
    route,
    routes::{DocInfo, Route},
};

use zimmer_events::contracts::internal::discounts::{DiscountPatch, NewDiscount};
use zimmer_http::{PageQuery, WindowPage};

use crate::handlers::{PaymentView, callback, discounts, internal, payments};

/// Every route of billing, as the gateway forwards them (docs/api.md "billing", docs/panels.md).
///
/// Internal API (`X-Internal-Token`, never routed by the gateway; admin calls it):
///
/// | method | path | what |
/// | --- | --- | --- |
/// | GET | /internal/discounts?search=&active=&page=&page_size=&limit= | codes newest first, paged (or the newest `limit`, up to 500), each with its `automation_ids` and redemption counts |
/// | POST | /internal/discounts | create `{code, percent_off, active?, starts_at?, ends_at?, max_redemptions?, per_user_limit?, automation_ids?, description?}` → 201; 409 on a taken code |
/// | GET | /internal/discounts/{id} | one code with `redemptions: {reserved, confirmed, released, over_limit}` |
/// | PUT, PATCH | /internal/discounts/{id} | partial update; `null` clears a nullable field |
/// | DELETE | /internal/discounts/{id} | deletes an unused code, deactivates a used one |
/// | GET | /internal/discounts/{id}/redemptions?page=&page_size= | its redemptions, paged |
/// | GET | /internal/payments?status=&user_id=&automation_id=&from=&to=&page=&page_size=&order= | all payments, paged |
/// | GET | /internal/payments/{id} | one payment with its reconciliation state |
/// | POST | /internal/payments/{id}/reconcile | verify it now (pending, or closed but perhaps paid) |
/// | POST | /internal/reconcile | run one reconciliation round now |
pub const DOC: DocInfo = DocInfo {
    title: "Zimmer billing API",
    description: "Zarinpal payments, the customer's payment history and discount codes \
        (docs/api.md \"billing\", docs/payments.md), and the internal API for admin (tag \
        `internal`, never routed by the gateway). Money is integer Rials. Errors are \
        `{detail, code}`.",
};

/// Every route of billing, in matching order: this table registers them and documents them
/// (crates/http/src/routes.rs).
pub const ROUTES: &[Route] = &[
    Route::openapi_document("/api/billing/openapi.json"),
    route!(POST "/api/payments/zarinpal/init" => payments::init, "Start a payment; the price is computed here; answers the StartPay `redirect_url`")
        .body::<payments::InitBody>().ok::<payments::InitAnswer>(),
    route!(GET "/api/payments/zarinpal/callback" => callback::callback, "Zarinpal's return (`?Authority=&Status=[&payment_id=]`): settles; 302 to the panel, or JSON with `Accept: application/json` or a Bearer (the owner's shape below; anyone else `{status, payment_status, message}`)")
        .public().ok::<CallbackAnswer>()
        .query::<callback::CallbackQuery>(),
    route!(GET "/api/user/payments" => payments::list, "The caller's payments, newest first: `limit`/`offset`/`order` or `page`/`page_size`")
        .ok::<WindowPage<PaymentView>>()
        .query::<payments::ListQuery>(),
    // Before `{id}`, which would otherwise take "summary".
    route!(GET "/api/user/payments/summary" => payments::summary, "Totals and the monthly spend (`months`, default 6)")
        .ok::<PaymentSummary>()
        .query::<payments::SummaryQuery>(),
    route!(GET "/api/user/payments/{id}" => payments::get, "One of the caller's payments").ok::<PaymentView>(),
    route!(POST "/api/discounts/validate" => discounts::validate, "Preview a discount code for an automation and a number of tokens (or an amount)")
        .body::<discounts::ValidateBody>().ok::<DiscountCheck>(),
    // internal (see above)
    route!(GET "/internal/discounts" => internal::list_discounts, "Discount codes, paged, with redemption counts")
        .query::<internal::DiscountListQuery>(),
    route!(POST "/internal/discounts" => internal::create_discount, "Create a discount code").status(201).body::<NewDiscount>(),
    route!(GET "/internal/discounts/{id}" => internal::get_discount, "One code with its redemption counts"),
    route!(PUT "/internal/discounts/{id}" => internal::update_discount, "Partial update; `null` clears a nullable field")
        .body::<DiscountPatch>(),
    route!(PATCH "/internal/discounts/{id}" => internal::update_discount, "Same as PUT").body::<DiscountPatch>(),
    route!(DELETE "/internal/discounts/{id}" => internal::delete_discount, "Delete an unused code, deactivate a used one"),
    route!(GET "/internal/discounts/{id}/redemptions" => internal::list_redemptions, "A code's redemptions, paged")
        .query::<PageQuery>(),
    route!(GET "/internal/payments" => internal::list_payments, "All payments, paged: `status`, `user_id`, `automation_id`, `from`, `to`, `order`")
        .query::<internal::AdminPaymentsQuery>(),
    route!(GET "/internal/payments/{id}" => internal::get_payment, "One payment with its reconciliation state"),
    route!(POST "/internal/payments/{id}/reconcile" => internal::reconcile_payment, "Verify one payment with Zarinpal now"),
    route!(POST "/internal/reconcile" => internal::reconcile_now, "Run one reconciliation round now"),
];

// Shapes the handlers write with `json!`, described here for the document (docs/panels.md
// "The user panel" reads them; crates/platform-tests checks the panel's fields are in them).

/// The callback's JSON answer to the payment's owner.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CallbackAnswer {
    payment_id: i64,
    /// In the panel's words: succeeded, failed, canceled, pending.
    status: String,
    /// As billing has it (docs/api.md "Payment statuses").
    payment_status: String,
    ref_id: Option<i64>,
    amount: i64,
    tokens_purchased: i64,
    message: String,
}

/// One month of `GET /api/user/payments/summary`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MonthlySpend {
    /// YYYY-MM.
    month: String,
    amount: i64,
}

/// `GET /api/user/payments/summary`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PaymentSummary {
    total_spent: i64,
    tokens_purchased: i64,
    payments_count: i64,
    succeeded_count: i64,
    /// Payment status → count.
    count_by_status: std::collections::BTreeMap<String, i64>,
    months: i32,
    points: Vec<MonthlySpend>,
}

/// `POST /api/discounts/validate`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DiscountCheck {
    valid: bool,
    code: Option<String>,
    percent_off: i32,
    amount_before: i64,
    amount_discount: i64,
    amount_after: i64,
    /// not_found, inactive_or_window, not_applicable, max_redeemed, per_user_limit.
    reason: Option<String>,
    message: Option<String>,
}
