//! `GET /api/payments/zarinpal/callback`: where Zarinpal sends the payer's browser, and what the
//! panel's result page calls again. The redirect is unsigned and proves nothing: the payment is
//! found by its `Authority` only, and only a verify with the stored amount counts. `Status=NOK`
//! cancels only once the gateway confirms the session cannot be paid any more.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, LOCATION},
    web,
};
use serde::Deserialize;
use zimmer_db::models::billing::{Payment, payment_status as ps};
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::{AuthState, bearer_token};

use crate::{AppState, domain, queries};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// Zarinpal's authority of the payment; also accepted as `authority`.
    #[serde(rename = "Authority", alias = "authority")]
    pub authority: Option<String>,
    /// Zarinpal's `OK` or `NOK`; also accepted as `status`.
    #[serde(rename = "Status", alias = "status")]
    pub status: Option<String>,
    /// Sent by the panel; only checked against the payment found by authority.
    pub payment_id: Option<String>,
}

/// The status the panel understands (docs/panels.md: succeeded, failed, canceled, pending).
fn panel_status(status: &str) -> &'static str {
    match status {
        ps::SUCCEEDED => "succeeded",
        ps::FAILED | ps::EXPIRED => "failed",
        ps::CANCELED => "canceled",
        _ => "pending",
    }
}

fn message(p: &Payment) -> String {
    match p.status.as_str() {
        ps::SUCCEEDED => format!(
            "Payment verified; {} tokens are being added to your automation",
            p.tokens_purchased
        ),
        ps::CANCELED => "The payment was canceled".to_owned(),
        ps::FAILED | ps::EXPIRED => "The payment was not completed. If money was taken from \
                                     your account, your bank returns it within 72 hours"
            .to_owned(),
        ps::NEEDS_REVIEW => {
            "The payment needs a manual check; our support team will contact you".to_owned()
        }
        _ => "The payment is being confirmed with the bank; your tokens will be added as soon \
              as it is verified"
            .to_owned(),
    }
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> HttpResult {
    let st = state.get_ref();
    let authority = query
        .authority
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid("Authority", "is required"))?;
    let ok = match query.status.as_deref().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("OK") => true,
        Some(s) if s.eq_ignore_ascii_case("NOK") => false,
        _ => return Err(ApiError::invalid("Status", "must be OK or NOK")),
    };
    // Something that cannot be an authority is as unknown as a well-formed made-up one.
    if !domain::plausible_authority(authority) {
        return Err(not_found());
    }
    let expected_id = match query.payment_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| not_found())?),
    };
    {
        let mut conn = st.billing.pool.get().await?;
        let existing = queries::payment_by_authority(&mut conn, authority)
            .await?
            .ok_or_else(not_found)?;
        if expected_id.is_some_and(|id| id != existing.id) {
            return Err(not_found());
        }
    }

    let payment = if ok {
        st.billing.settle_by_authority(authority).await?
    } else {
        st.billing.cancel_by_authority(authority).await?
    }
    .ok_or_else(not_found)?;

    let headers = req.headers();
    let wants_json = headers.contains_key(AUTHORIZATION)
        || headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        // Knowing an authority is not ownership (it travels in URLs): the reference number and
        // the amount go only to the payment's owner, signed in; anyone else learns the status
        // (in the panel's words and as billing has it) and a message without amounts.
        // The masked card is never here (the owner reads it from the payment itself).
        let owner = match (bearer_token(&req), req.app_data::<web::Data<AuthState>>()) {
            (Some(token), Some(auth)) => auth
                .authenticate(token)
                .await
                .is_ok_and(|u| u.id == payment.user_id),
            _ => false,
        };
        let body = if owner {
            serde_json::json!({
                "payment_id": payment.id,
                "status": panel_status(&payment.status),
                "payment_status": payment.status,
                "ref_id": payment.ref_id,
                "amount": payment.amount,
                "tokens_purchased": payment.tokens_purchased,
                "message": message(&payment),
            })
        } else {
            serde_json::json!({
                "status": panel_status(&payment.status),
                "payment_status": payment.status,
                "message": public_message(&payment),
            })
        };
        return Ok(HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(body));
    }
    // The browser goes on to the panel's result page, which calls this again for the JSON.
    // The gateway's own Status is passed on, so that second call does what this one did.
    let location = domain::result_page_url(
        &st.platform.settings.frontend_url,
        payment.return_path.as_deref(),
        payment.id,
        Some(authority),
        if ok { "OK" } else { "NOK" },
    );
    Ok(HttpResponse::Found()
        .insert_header((LOCATION, location))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish())
}

/// The message for a caller who is not the owner: the status in words, nothing about amounts.
fn public_message(p: &Payment) -> String {
    match p.status.as_str() {
        ps::SUCCEEDED => "Payment verified".to_owned(),
        _ => message(p),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Payment not found")
}
