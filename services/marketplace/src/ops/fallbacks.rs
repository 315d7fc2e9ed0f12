//! A vendor's fallback report (docs/panels.md "Fallback log"): stored once per idempotency
//! key of the automation, like consumption's keys (docs/api.md "Idempotency").

use diesel_async::AsyncPgConnection;
use zimmer_http::ApiError;

use crate::{
    domain::knowledge::FallbackReport,
    queries::fallbacks::{self as q, FallbackRow, NewFallback},
};

pub enum Stored {
    Created(FallbackRow),
    /// The key was used before for the same report: that row.
    Replayed(FallbackRow),
}

/// Stores `report` for the customer `user_id` of `automation_id` (the caller checked that the
/// user automation is this automation's). One statement: the unique key
/// `(automation_id, idempotency_key)` decides, so concurrent repeats store one row.
pub async fn report(
    conn: &mut AsyncPgConnection,
    report: &FallbackReport,
    user_id: i64,
    automation_id: i64,
) -> Result<Stored, ApiError> {
    let new = NewFallback {
        user_automation_id: report.user_automation_id,
        user_id,
        automation_id,
        message: &report.message,
        error_type: report.error_type.as_deref(),
        idempotency_key: report.idempotency_key.as_deref(),
    };
    if let Some(row) = q::insert(conn, &new).await? {
        return Ok(Stored::Created(row));
    }
    // Only a keyed report can conflict.
    let key = report.idempotency_key.as_deref().unwrap_or_default();
    let prev = q::by_key(conn, automation_id, key)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("fallback key {key} vanished")))?;
    if prev.user_automation_id != report.user_automation_id || prev.message != report.message {
        return Err(ApiError::conflict(
            "idempotency_conflict",
            "This idempotency key was already used for a different report",
        ));
    }
    Ok(Stored::Replayed(prev))
}
