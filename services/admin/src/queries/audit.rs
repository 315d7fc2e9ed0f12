//! The audit log: what staff did, to what, when. Append-only.

use chrono::{DateTime, Utc};
use diesel::{
    QueryResult,
    pg::Pg,
    prelude::*,
    sql_types::{BigInt, Jsonb, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::admin::{AuditEntry, NewAuditEntry},
    schema::admin_audit_log,
};

use super::paged;

pub async fn record(conn: &mut AsyncPgConnection, entry: &NewAuditEntry<'_>) -> QueryResult<()> {
    diesel::insert_into(admin_audit_log::table)
        .values(entry)
        .execute(conn)
        .await
        .map(drop)
}

/// Records `entry` unless an entry of the same action with the same idempotency key exists
/// (the unique index `admin_audit_log_idempotency_key`): a retried request is logged once.
/// `details` gets the key as `idempotency_key`. True when this call wrote the entry.
pub async fn record_once(
    conn: &mut AsyncPgConnection,
    entry: &NewAuditEntry<'_>,
    idempotency_key: &str,
) -> QueryResult<bool> {
    let mut details = entry.details.clone();
    if let Some(map) = details.as_object_mut() {
        map.insert("idempotency_key".into(), idempotency_key.into());
    } else {
        details = serde_json::json!({ "idempotency_key": idempotency_key, "value": details });
    }
    let n = diesel::sql_query(
        "INSERT INTO admin_audit_log (actor_id, action, target_type, target_id, details) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (action, (details ->> 'idempotency_key')) \
             WHERE (details ->> 'idempotency_key') IS NOT NULL \
         DO NOTHING",
    )
    .bind::<BigInt, _>(entry.actor_id)
    .bind::<Text, _>(entry.action)
    .bind::<Text, _>(entry.target_type)
    .bind::<Nullable<Text>, _>(entry.target_id)
    .bind::<Jsonb, _>(&details)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn filtered(f: &AuditFilter) -> admin_audit_log::BoxedQuery<'static, Pg> {
    admin_audit_log::table
        .into_boxed()
        .filter_some(f.actor_id, |a| admin_audit_log::actor_id.eq(a))
        .filter_some(f.action.clone(), |a| admin_audit_log::action.eq(a))
        .filter_some(f.target_type.clone(), |t| {
            admin_audit_log::target_type.eq(t)
        })
        .filter_some(f.target_id.clone(), |t| admin_audit_log::target_id.eq(t))
        .filter_some(f.from, |from| admin_audit_log::created_at.ge(from))
        .filter_some(f.to, |to| admin_audit_log::created_at.lt(to))
}

/// Newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &AuditFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AuditEntry>, i64)> {
    let rows = filtered(f).select(AuditEntry::as_select()).order((
        admin_audit_log::created_at.desc(),
        admin_audit_log::id.desc(),
    ));
    paged(conn, filtered(f).count(), rows, offset, limit).await
}
