//! OpenAI key operations that are more than one row change: the key test (an outbound call,
//! then its effect on the row and the audit entry) and the lease that counts a key's use
//! (docs/panels.md "OpenAI keys: per-automation limits and test", "Counted when used").

use chrono::{Timelike, Utc};
use zimmer_db::models::admin::{OpenAiKey, key_status};
use zimmer_events::contracts::internal::openai::{LeaseGrant, LeaseRequest};
use zimmer_http::ApiError;

use crate::{
    AppState,
    clients::openai,
    domain::keys::TestOutcome,
    ops::{Audit, audit_after},
    queries,
    rbac::Staff,
};

/// The dashboard's test answer: `{success, latency_ms?, model?, error_message?}`.
#[derive(Debug, serde::Serialize)]
pub struct TestAnswer {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The key's status after the test (`error` when OpenAI refused it).
    pub status: String,
    pub failure_count: i64,
}

/// Tests key `id`: a disabled key answers without a call; a refusal (401/403) marks the key
/// `error` and counts a failure; a pass clears an earlier `error`. Audited. Unknown → 404.
pub async fn test(state: &AppState, staff: &Staff, id: i64) -> Result<TestAnswer, ApiError> {
    let key = {
        let mut conn = state.platform.pool.get().await?;
        queries::keys::get(&mut conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("Key not found"))?
    };
    if key.status == key_status::DISABLED {
        return Ok(TestAnswer {
            success: false,
            latency_ms: None,
            model: None,
            error_message: Some("This key is disabled; enable it to test it".to_owned()),
            status: key.status,
            failure_count: key.failure_count,
        });
    }
    // Decrypted only here, for the one call; dropped when this block ends.
    let outcome = {
        let plain = state.cipher.decrypt(&key.key_ciphertext)?;
        openai::test_key(&state.config, &plain).await
    };
    let mut conn = state.platform.pool.get().await?;
    let after: OpenAiKey = match &outcome {
        TestOutcome::Refused { .. } => queries::keys::record_refusal(&mut conn, id).await?,
        TestOutcome::Passed { .. } => {
            queries::keys::clear_error(&mut conn, id).await?;
            queries::keys::get(&mut conn, id).await?
        }
        TestOutcome::Failed { .. } => Some(key.clone()),
    }
    // Deleted while the call ran: report on the row as it was.
    .unwrap_or(key);
    drop(conn);
    let answer = match outcome {
        TestOutcome::Passed { latency_ms, model } => TestAnswer {
            success: true,
            latency_ms: Some(latency_ms),
            model: Some(model),
            error_message: None,
            status: after.status,
            failure_count: after.failure_count,
        },
        TestOutcome::Refused {
            latency_ms,
            message,
        }
        | TestOutcome::Failed {
            latency_ms,
            message,
        } => TestAnswer {
            success: false,
            latency_ms: Some(latency_ms),
            model: None,
            error_message: Some(message),
            status: after.status,
            failure_count: after.failure_count,
        },
    };
    audit_after(
        state,
        staff,
        Audit::new(
            "openai_key.test",
            "openai_key",
            Some(id),
            serde_json::json!({
                "success": answer.success,
                "latency_ms": answer.latency_ms,
                "status": answer.status,
                "error_message": answer.error_message,
            }),
        ),
        None,
    )
    .await;
    Ok(answer)
}

/// Picks and counts a key for one OpenAI request of `automation_id` (see
/// [`queries::keys::lease`]). 404 when the automation has no key that could be used, 429
/// (retry at the next minute) when every such key is at a limit now.
pub async fn lease(state: &AppState, req: LeaseRequest) -> Result<LeaseGrant, ApiError> {
    if req.tokens < 0 || req.tokens > 10_000_000 {
        return Err(ApiError::invalid(
            "tokens",
            "must be between 0 and 10,000,000",
        ));
    }
    let mut conn = state.platform.pool.get().await?;
    let Some(key) = queries::keys::lease(&mut conn, req.automation_id, req.tokens).await? else {
        if queries::keys::leasable_count(&mut conn, req.automation_id).await? == 0 {
            return Err(
                ApiError::not_found("This automation has no active OpenAI key")
                    .with_code("no_openai_key"),
            );
        }
        let retry = 60 - u64::from(Utc::now().second());
        return Err(ApiError::too_many_requests(retry).with_code("openai_keys_at_limit"));
    };
    drop(conn);
    let api_key = state.cipher.decrypt(&key.key_ciphertext)?;
    Ok(LeaseGrant {
        key_id: key.id,
        automation_id: req.automation_id,
        alias: key.alias,
        api_key,
        rpm_limit: key.rpm_limit,
        used_requests_minute: key.used_requests_minute,
        daily_token_limit: key.daily_limit,
        used_tokens_today: key.used_today,
        status: key.status,
    })
}
