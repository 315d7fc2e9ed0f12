//! The KB status and KB reset calls to a vendor (docs/panels.md "KB monitoring: status,
//! reset, history"), through the signed, guarded [`VendorClient`] provisioning uses: POST
//! `api_kb_status_url` `{user_id, user_automation_id}`, POST `api_kb_reset_url`
//! `{user_automation_id}`, each with its own timeout and never following redirects.

use serde_json::{Value, json};

use crate::{
    clients::vendor::{CallError, VendorCall, VendorClient},
    domain::kb_monitoring::{KbCheck, read_status_answer},
};

/// Why a call produced no usable answer, as one line for `error_logs` or a 502 `detail`.
fn reason(e: &CallError) -> String {
    match e {
        CallError::Refused(r) => format!("KB URL not called: {r}"),
        CallError::Retryable(r) | CallError::Permanent(r) => format!("vendor call failed: {r}"),
    }
}

/// Asks the vendor how one customer's knowledge base is. Never fails: a refusal, a timeout or
/// a non-2xx is an `error` row with the reason.
pub async fn status(
    vendor: &VendorClient,
    call: VendorCall<'_>,
    user_id: i64,
    user_automation_id: i64,
) -> KbCheck {
    let body = json!({ "user_id": user_id, "user_automation_id": user_automation_id });
    match vendor.post_json(call, &body).await {
        Ok((status, answer)) if status.is_success() => read_status_answer(&answer),
        Ok((status, _)) => KbCheck::failed(format!("vendor answered {status}")),
        Err(e) => KbCheck::failed(reason(&e)),
    }
}

/// Asks the vendor to rebuild one customer's knowledge base: its `status` (if any) on a 2xx,
/// else why not.
pub async fn reset(
    vendor: &VendorClient,
    call: VendorCall<'_>,
    user_automation_id: i64,
) -> Result<Option<String>, String> {
    let body = json!({ "user_automation_id": user_automation_id });
    match vendor.post_json(call, &body).await {
        Ok((status, answer)) if status.is_success() => Ok(answer
            .get("status")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(100).collect())),
        Ok((status, _)) => Err(format!("vendor answered {status}")),
        Err(e) => Err(reason(&e)),
    }
}
