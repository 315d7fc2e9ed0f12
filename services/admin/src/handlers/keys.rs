//! OpenAI API keys: stored encrypted (AES-256-GCM, `crypto.rs`), shown only as a masked tail,
//! with a status and an optional daily limit. Admin owns this table, so each change and its
//! audit entry are one transaction.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_db::models::admin::{NewAuditEntry, NewOpenAiKey, OpenAiKey, key_status};
use zimmer_http::{ApiError, HttpResult, validate, validate::Validator};

use crate::{
    AppState,
    crypto::{masked, tail},
    queries::{self, keys::KeyChanges},
    rbac::Staff,
};

/// A key as the API shows it: never the key, only its last four characters.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: i64,
    pub alias: String,
    pub key_masked: String,
    pub key_tail: String,
    pub status: String,
    pub daily_limit: Option<i64>,
    /// Use counted today (UTC); a count from an earlier day reads as 0.
    pub used_today: i64,
    pub remaining_today: Option<i64>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl KeyView {
    fn new(k: OpenAiKey, today: NaiveDate) -> Self {
        let used_today = if k.usage_date == today {
            k.used_today
        } else {
            0
        };
        Self {
            id: k.id,
            key_masked: masked(&k.key_tail),
            alias: k.alias,
            key_tail: k.key_tail,
            status: k.status,
            daily_limit: k.daily_limit,
            used_today,
            remaining_today: k.daily_limit.map(|l| (l - used_today).max(0)),
            last_used_at: k.last_used_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// An API key as pasted: printable ASCII without spaces, 8–512 characters.
fn check_key(raw: &str) -> Result<String, &'static str> {
    let k = raw.trim();
    if k.is_empty() {
        return Err("must not be empty");
    }
    if !(8..=512).contains(&k.len()) {
        return Err("must be 8 to 512 characters");
    }
    if !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces");
    }
    Ok(k.to_owned())
}

fn check_limit(v: &mut Validator, limit: Option<i64>) {
    if limit.is_some_and(|l| !(1..=1_000_000_000_000).contains(&l)) {
        v.error(
            "daily_limit",
            "must be a positive number (or null for no limit)",
        );
    }
}

fn check_status(v: &mut Validator, status: Option<&str>) -> Option<String> {
    let s = status.map(str::trim)?;
    if key_status::ALL.contains(&s) {
        Some(s.to_owned())
    } else {
        v.error("status", "must be one of active, disabled, exhausted");
        None
    }
}

fn alias_taken(e: DieselError) -> ApiError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict("alias_taken", "A key with this alias exists")
        }
        other => other.into(),
    }
}

/// `GET /api/admin/openai-keys`
pub async fn list(_staff: Staff, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let rows = queries::keys::list(&mut conn).await?;
    let today = today();
    let items: Vec<KeyView> = rows.into_iter().map(|k| KeyView::new(k, today)).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "total": items.len() })))
}

/// `GET /api/admin/openai-keys/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let key = queries::keys::get(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("Key not found"))?;
    Ok(HttpResponse::Ok().json(KeyView::new(key, today())))
}

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    pub alias: String,
    /// Also accepted as `api_key`.
    #[serde(alias = "api_key")]
    pub key: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub daily_limit: Option<i64>,
}

/// `POST /api/admin/openai-keys` `{alias, key, status?, daily_limit?}` → 201
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    let alias = v.check("alias", validate::line(&body.alias, 100));
    let key = v.check("key", check_key(&body.key));
    let status = check_status(&mut v, body.status.as_deref());
    check_limit(&mut v, body.daily_limit);
    v.finish()?;
    let (Some(alias), Some(key)) = (alias, key) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    let ciphertext = state.cipher.encrypt(&key)?;
    let key_tail = tail(&key);
    drop(key);
    let mut conn = state.platform.pool.get().await?;
    let row = conn
        .transaction(async |conn| {
            let row = queries::keys::insert(
                conn,
                &NewOpenAiKey {
                    alias: &alias,
                    key_ciphertext: &ciphertext,
                    key_tail: &key_tail,
                    status: status.as_deref().unwrap_or(key_status::ACTIVE),
                    daily_limit: body.daily_limit,
                },
            )
            .await
            .map_err(alias_taken)?;
            queries::audit::record(
                conn,
                &NewAuditEntry {
                    actor_id: staff.id(),
                    action: "openai_key.create",
                    target_type: "openai_key",
                    target_id: Some(&row.id.to_string()),
                    details: &json!({
                        "alias": row.alias,
                        "key_tail": row.key_tail,
                        "status": row.status,
                        "daily_limit": row.daily_limit,
                    }),
                },
            )
            .await?;
            Ok::<_, ApiError>(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(KeyView::new(row, today())))
}

fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(de).map(Some)
}

/// A partial update; `daily_limit: null` removes the limit.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub daily_limit: Option<Option<i64>>,
    /// A replacement key (rotation); stored encrypted like the first.
    #[serde(default, alias = "api_key")]
    pub key: Option<String>,
}

/// `PUT|PATCH /api/admin/openai-keys/{id}` `{alias?, status?, daily_limit?, key?}`
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    let id = path.into_inner();
    let body = body.into_inner();
    let mut v = Validator::new();
    let alias = body
        .alias
        .as_deref()
        .and_then(|a| v.check("alias", validate::line(a, 100)));
    let status = check_status(&mut v, body.status.as_deref());
    check_limit(&mut v, body.daily_limit.flatten());
    let key = body
        .key
        .as_deref()
        .and_then(|k| v.check("key", check_key(k)));
    v.finish()?;
    let (key_ciphertext, key_tail) = match key {
        Some(k) => (Some(state.cipher.encrypt(&k)?), Some(tail(&k))),
        None => (None, None),
    };
    let changes = KeyChanges {
        alias,
        status,
        daily_limit: body.daily_limit,
        key_ciphertext,
        key_tail,
        updated_at: Some(Utc::now()),
    };
    let mut details = serde_json::Map::new();
    if let Some(a) = &changes.alias {
        details.insert("alias".into(), json!(a));
    }
    if let Some(s) = &changes.status {
        details.insert("status".into(), json!(s));
    }
    if let Some(l) = changes.daily_limit {
        details.insert("daily_limit".into(), json!(l));
    }
    if let Some(t) = &changes.key_tail {
        details.insert("rotated_to_tail".into(), json!(t));
    }
    let mut conn = state.platform.pool.get().await?;
    let row = conn
        .transaction(async |conn| {
            let row = queries::keys::update(conn, id, &changes)
                .await
                .map_err(alias_taken)?
                .ok_or_else(|| ApiError::not_found("Key not found"))?;
            queries::audit::record(
                conn,
                &NewAuditEntry {
                    actor_id: staff.id(),
                    action: "openai_key.update",
                    target_type: "openai_key",
                    target_id: Some(&id.to_string()),
                    details: &serde_json::Value::Object(details),
                },
            )
            .await?;
            Ok::<_, ApiError>(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(KeyView::new(row, today())))
}

/// `DELETE /api/admin/openai-keys/{id}` → 204 (the ciphertext goes with the row).
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    conn.transaction(async |conn| {
        let row = queries::keys::delete(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("Key not found"))?;
        queries::audit::record(
            conn,
            &NewAuditEntry {
                actor_id: staff.id(),
                action: "openai_key.delete",
                target_type: "openai_key",
                target_id: Some(&id.to_string()),
                details: &json!({ "alias": row.alias, "key_tail": row.key_tail }),
            },
        )
        .await?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("sk-proj-abcdefgh").is_ok());
        assert!(check_key("short").is_err());
        assert!(check_key("sk-has space inside").is_err());
        assert!(check_key("sk-persian-کلید").is_err());
    }
}
