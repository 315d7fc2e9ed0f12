//! Admin's changes. Admin owns only its audit log, OpenAI keys and backups; every other change is
//! made by the owning service through its internal API (docs/architecture.md), so the unit of
//! work here is "call the owner, then write the audit entry" ([`call_owner`]) rather than a
//! local transaction and outbox event as in the other services.

pub mod backups;
pub mod keys;

use std::borrow::Cow;

use diesel_async::AsyncPgConnection;
use reqwest::Method;
use serde::de::DeserializeOwned;
use zimmer_db::models::admin::NewAuditEntry;
use zimmer_http::ApiError;

use crate::{
    AppState,
    clients::{Reply, Service},
    queries,
    rbac::Staff,
};

/// The Redis key of the cached dashboard stats.
pub const STATS_CACHE_KEY: &str = "admin:stats:dashboard:v1";

/// What an action did, for the audit log.
pub struct Audit<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl<'a> Audit<'a> {
    /// The entry as `staff` did it.
    fn entry(&self, staff: &Staff) -> NewAuditEntry<'_> {
        NewAuditEntry {
            actor_id: staff.id(),
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id.as_deref(),
            details: &self.details,
        }
    }

    pub fn new(
        action: &'a str,
        target_type: &'a str,
        target_id: Option<impl ToString>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            action,
            target_type,
            target_id: target_id.map(|id| id.to_string()),
            details,
        }
    }

    /// [`Audit::new`] for the row the owner answered with: a new row's id is known only from
    /// the owner's answer (its `id`).
    pub fn of_answer(
        action: &'a str,
        target_type: &'a str,
        reply: &Reply,
        details: serde_json::Value,
    ) -> Self {
        let id = reply.body.get("id").and_then(serde_json::Value::as_i64);
        Self::new(action, target_type, id, details)
    }
}

/// A call to the owner's internal API that changes its data, made for a staff member by
/// [`call_owner`].
pub struct OwnerCall<'a> {
    service: Service,
    method: Method,
    path: Cow<'a, str>,
    body: Option<Cow<'a, serde_json::Value>>,
    acting_token: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    changes_stats: bool,
}

impl<'a> OwnerCall<'a> {
    /// `path` borrowed, or made for this call (`format!` with the target's id).
    pub fn new(service: Service, method: Method, path: impl Into<Cow<'a, str>>) -> Self {
        Self {
            service,
            method,
            path: path.into(),
            body: None,
            acting_token: None,
            idempotency_key: None,
            changes_stats: false,
        }
    }

    /// The JSON body (none: no body, as a `DELETE`).
    pub fn body(mut self, body: &'a serde_json::Value) -> Self {
        self.body = Some(Cow::Borrowed(body));
        self
    }

    /// [`OwnerCall::body`], made for this call.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(Cow::Owned(body));
        self
    }

    /// Sent with the staff member's own access token (see [`Upstreams::call_as`]).
    ///
    /// [`Upstreams::call_as`]: crate::clients::Upstreams::call_as
    pub fn acting(mut self, token: &'a str) -> Self {
        self.acting_token = Some(token);
        self
    }

    /// A retried request (same key) is audited once.
    pub fn idempotent(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// The change moves the dashboard's numbers: the cached stats are dropped after it.
    pub fn changes_stats(mut self) -> Self {
        self.changes_stats = true;
        self
    }
}

/// The shape every admin change has: call the owner (its refusal mapped for the admin caller
/// by [`crate::clients`] and returned as is), then write the audit entry `audit` makes from
/// its answer (see [`audit_after`]), then drop the cached stats if asked. The owner's answer
/// is returned for the handler to shape.
pub async fn call_owner<'a>(
    state: &AppState,
    staff: &Staff,
    call: OwnerCall<'_>,
    audit: impl FnOnce(&Reply) -> Audit<'a>,
) -> Result<Reply, ApiError> {
    let reply = state
        .upstreams
        .call_as(
            call.service,
            call.method,
            &call.path,
            &[],
            call.body.as_deref(),
            call.acting_token,
        )
        .await?;
    audit_after(state, staff, audit(&reply), call.idempotency_key).await;
    if call.changes_stats {
        invalidate_stats(state).await;
    }
    Ok(reply)
}

/// Records an action another service carried out for `staff` (after its call succeeded).
/// With an idempotency key, a retried request is recorded once. The change has happened
/// by now: a failure to write the entry must not turn it into an error the dashboard would
/// retry, so it is logged (with the whole entry, the fallback trail) instead of returned.
pub async fn audit_after(
    state: &AppState,
    staff: &Staff,
    audit: Audit<'_>,
    idempotency_key: Option<&str>,
) {
    let entry = audit.entry(staff);
    let result = async {
        let mut conn = state.platform.pool.get().await?;
        match idempotency_key {
            Some(key) => queries::audit::record_once(&mut conn, &entry, key)
                .await
                .map(drop)?,
            None => queries::audit::record(&mut conn, &entry).await?,
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(
            error = %e,
            actor_id = entry.actor_id,
            action = entry.action,
            target_type = entry.target_type,
            target_id = ?entry.target_id,
            details = %entry.details,
            "audit entry could not be written"
        );
    }
}

/// Records an action admin carried out on its own tables, in the caller's transaction (the
/// change and its entry commit together).
pub async fn record(
    conn: &mut AsyncPgConnection,
    staff: &Staff,
    audit: Audit<'_>,
) -> Result<(), ApiError> {
    queries::audit::record(conn, &audit.entry(staff)).await?;
    Ok(())
}

/// A read of the owner's internal API (`GET path?query`), its answer as the contract type `T`.
pub async fn read_owner<T: DeserializeOwned>(
    state: &AppState,
    service: Service,
    path: &str,
    query: &[(&str, String)],
) -> Result<T, ApiError> {
    let reply = state.upstreams.get(service, path, query).await?;
    typed(service, reply)
}

/// The owner's answer as its contract type: another shape is a deployment error (500).
pub fn typed<T: DeserializeOwned>(service: Service, reply: Reply) -> Result<T, ApiError> {
    serde_json::from_value(reply.body).map_err(|e| {
        ApiError::internal(anyhow::anyhow!(
            "the {} answer has another shape: {e}",
            service.name()
        ))
    })
}

/// Drops the cached dashboard after an action that changes its numbers.
pub async fn invalidate_stats(state: &AppState) {
    state.platform.redis.delete(&[STATS_CACHE_KEY]).await;
}
