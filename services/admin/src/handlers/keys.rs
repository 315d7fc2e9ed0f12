//! OpenAI API keys: stored encrypted (AES-256-GCM, `crypto.rs`), shown only as a masked tail,
//! each belonging to one automation, with a status, an optional per-minute request limit and
//! daily token cap, usage counters and a failure count (docs/panels.md "OpenAI keys"). Admin owns
//! this table, so each change and its audit entry are one transaction. The dashboard's paths
//! (`/list`, `/`, `/keys/{id}...`) are aliases of `/openai-keys` on the same rows.

use actix_web::{HttpResponse, http::header::CACHE_CONTROL, web};
use chrono::{DateTime, Timelike, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zimmer_db::models::admin::{NewOpenAiKey, OpenAiKey, key_status};
use zimmer_events::contracts::internal::{nullable, openai::LeaseRequest};
use zimmer_http::{ApiError, HttpResult, InternalCaller, validate, validate::Validator};

use super::found;
use crate::{
    AppState,
    crypto::{masked, tail},
    domain::keys::masked_key,
    ops::{self, Audit},
    queries::{
        self,
        keys::{KeyChanges, KeyFilter},
    },
    rbac::Staff,
};

/// A key as the API shows it: never the key, only its last four characters. Carries both
/// vocabularies: ours (`daily_limit`, `used_today`, `key_masked`) and the dashboard's
/// (`daily_token_limit`, `used_tokens_today`, `masked_key`; docs/panels.md "OpenAI keys").
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: i64,
    pub automation_id: Option<i64>,
    pub alias: String,
    pub key_masked: String,
    pub masked_key: String,
    pub key_tail: String,
    pub status: String,
    pub rpm_limit: Option<i64>,
    pub daily_limit: Option<i64>,
    pub daily_token_limit: Option<i64>,
    /// Requests counted in the current minute; a count from an earlier minute reads as 0.
    pub used_requests_minute: i64,
    /// Use counted today (UTC); a count from an earlier day reads as 0.
    pub used_today: i64,
    pub used_tokens_today: i64,
    pub remaining_today: Option<i64>,
    pub failure_count: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl KeyView {
    fn new(k: OpenAiKey, now: DateTime<Utc>) -> Self {
        let used_today = if k.usage_date == now.date_naive() {
            k.used_today
        } else {
            0
        };
        let minute = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let used_requests_minute = if k.minute_window_start >= minute {
            k.used_requests_minute
        } else {
            0
        };
        Self {
            id: k.id,
            automation_id: k.automation_id,
            key_masked: masked(&k.key_tail),
            masked_key: masked_key(&k.key_tail),
            alias: k.alias,
            key_tail: k.key_tail,
            status: k.status,
            rpm_limit: k.rpm_limit,
            daily_limit: k.daily_limit,
            daily_token_limit: k.daily_limit,
            used_requests_minute,
            used_today,
            used_tokens_today: used_today,
            remaining_today: k.daily_limit.map(|l| (l - used_today).max(0)),
            failure_count: k.failure_count,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
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

fn check_limit(v: &mut Validator, field: &'static str, limit: Option<i64>) {
    if limit.is_some_and(|l| !(1..=1_000_000_000_000).contains(&l)) {
        v.error(field, "must be a positive number (or null for no limit)");
    }
}

/// One of the four key statuses.
fn key_status_of(raw: &str) -> Result<String, &'static str> {
    if key_status::ALL.contains(&raw) {
        Ok(raw.to_owned())
    } else {
        Err("must be one of active, disabled, exhausted, error")
    }
}

fn check_status(v: &mut Validator, status: Option<&str>) -> Option<String> {
    v.check("status", key_status_of(status.map(str::trim)?))
}

fn alias_taken(e: DieselError) -> ApiError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::conflict(
            "alias_taken",
            "This automation already has a key with this alias",
        ),
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            choose_an_automation()
        }
        other => other.into(),
    }
}

fn choose_an_automation() -> ApiError {
    ApiError::invalid("automation_id", "choose an automation")
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Text: the dashboard sends `automation_id=` (empty) when not filtering.
    #[serde(default)]
    pub automation_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<KeyFilter, ApiError> {
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(key_status_of(s).map_err(|m| ApiError::invalid("status", m))?),
        };
        let automation_id = match self.automation_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .map_err(|_| ApiError::invalid("automation_id", "must be a number"))?,
            ),
        };
        Ok(KeyFilter {
            automation_id,
            status,
        })
    }
}

/// The dashboard reads every key at once (docs/panels.md: no paging).
const LIST_CAP: i64 = 500;

/// The keys the list query asks for, at most [`LIST_CAP`].
async fn listed_keys(state: &AppState, query: &ListQuery) -> Result<Vec<KeyView>, ApiError> {
    let filter = query.filter()?;
    let mut conn = state.platform.pool.get().await?;
    let rows = queries::keys::list(&mut conn, &filter, LIST_CAP).await?;
    let now = Utc::now();
    Ok(rows.into_iter().map(|k| KeyView::new(k, now)).collect())
}

/// `GET /api/admin/openai-keys?automation_id=&status=` → `{items, total}`
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    let items = listed_keys(&state, &query).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "total": items.len() })))
}

/// `GET /api/admin/list?automation_id=&status=` → a bare array (the dashboard's API-keys page).
pub async fn list_bare(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResult {
    Ok(HttpResponse::Ok().json(listed_keys(&state, &query).await?))
}

/// `GET /api/admin/openai-keys/{id}`
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let key = found(
        queries::keys::get(&mut conn, path.into_inner()).await?,
        "Key not found",
    )?;
    Ok(HttpResponse::Ok().json(KeyView::new(key, Utc::now())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = KeyCreateBody)]
pub struct CreateBody {
    /// Required (docs/panels.md): 0 or an unknown automation → 422 "choose an automation".
    #[serde(default)]
    pub automation_id: Option<i64>,
    pub alias: String,
    /// Also accepted as `api_key`.
    #[serde(alias = "api_key")]
    pub key: String,
    #[serde(default)]
    pub status: Option<String>,
    /// Also accepted as `daily_token_limit` (the dashboard's name).
    #[serde(default, alias = "daily_token_limit")]
    pub daily_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
}

/// `POST /api/admin/openai-keys` and `POST /api/admin/` `{automation_id, alias, key | api_key,
/// status?, daily_limit | daily_token_limit?, rpm_limit?}` → 201
pub async fn create(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    let automation_id = body.automation_id.filter(|a| *a > 0);
    if automation_id.is_none() {
        v.error("automation_id", "choose an automation");
    }
    let alias = v.check("alias", validate::line(&body.alias, 100));
    let key = v.check("api_key", check_key(&body.key));
    let status = check_status(&mut v, body.status.as_deref());
    check_limit(&mut v, "daily_token_limit", body.daily_limit);
    check_limit(&mut v, "rpm_limit", body.rpm_limit);
    v.finish()?;
    let (Some(automation_id), Some(alias), Some(key)) = (automation_id, alias, key) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    let ciphertext = state.cipher.encrypt(&key)?;
    let key_tail = tail(&key);
    drop(key);
    let mut conn = state.platform.pool.get().await?;
    if !queries::keys::automation_exists(&mut conn, automation_id).await? {
        return Err(choose_an_automation());
    }
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
                    automation_id: Some(automation_id),
                    rpm_limit: body.rpm_limit,
                },
            )
            .await
            .map_err(alias_taken)?;
            let details = json!({
                "automation_id": row.automation_id,
                "alias": row.alias,
                "key_tail": row.key_tail,
                "status": row.status,
                "daily_limit": row.daily_limit,
                "rpm_limit": row.rpm_limit,
            });
            let audit = Audit::new("openai_key.create", "openai_key", Some(row.id), details);
            ops::record(conn, &staff, audit).await?;
            Ok::<_, ApiError>(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(KeyView::new(row, Utc::now())))
}

/// A partial update; a limit sent as `null` removes it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = KeyUpdateBody)]
pub struct UpdateBody {
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Also accepted as `daily_token_limit` (the dashboard's name).
    #[serde(
        default,
        alias = "daily_token_limit",
        deserialize_with = "nullable::deserialize"
    )]
    pub daily_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable::deserialize")]
    pub rpm_limit: Option<Option<i64>>,
    /// A replacement key (rotation); stored encrypted like the first. Absent, null or `""`
    /// keeps the stored key (the dashboard's edit form sends `""` when not replacing it).
    #[serde(default, alias = "api_key")]
    pub key: Option<String>,
}

/// `PUT|PATCH /api/admin/openai-keys/{id}` and `PUT /api/admin/keys/{id}` `{alias?, status?,
/// daily_limit | daily_token_limit?, rpm_limit?, key | api_key?}`
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    apply_update(staff, &state, path.into_inner(), body.into_inner()).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = KeyStatusBody)]
pub struct StatusBody {
    pub status: String,
}

/// `PATCH /api/admin/keys/{id}/status` `{status}`
pub async fn set_status(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<StatusBody>,
) -> HttpResult {
    let body = UpdateBody {
        status: Some(body.into_inner().status),
        ..UpdateBody::default()
    };
    apply_update(staff, &state, path.into_inner(), body).await
}

async fn apply_update(staff: Staff, state: &AppState, id: i64, body: UpdateBody) -> HttpResult {
    let mut v = Validator::new();
    let alias = body
        .alias
        .as_deref()
        .and_then(|a| v.check("alias", validate::line(a, 100)));
    let status = check_status(&mut v, body.status.as_deref());
    check_limit(&mut v, "daily_token_limit", body.daily_limit.flatten());
    check_limit(&mut v, "rpm_limit", body.rpm_limit.flatten());
    let key = body
        .key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
        .and_then(|k| v.check("api_key", check_key(k)));
    v.finish()?;
    let (key_ciphertext, key_tail) = match key {
        Some(k) => (Some(state.cipher.encrypt(&k)?), Some(tail(&k))),
        None => (None, None),
    };
    let changes = KeyChanges {
        alias,
        status,
        daily_limit: body.daily_limit,
        rpm_limit: body.rpm_limit,
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
    if let Some(l) = changes.rpm_limit {
        details.insert("rpm_limit".into(), json!(l));
    }
    if let Some(t) = &changes.key_tail {
        details.insert("rotated_to_tail".into(), json!(t));
    }
    let mut conn = state.platform.pool.get().await?;
    let row = conn
        .transaction(async |conn| {
            let updated = queries::keys::update(conn, id, &changes).await;
            let row = found(updated.map_err(alias_taken)?, "Key not found")?;
            let details = serde_json::Value::Object(details);
            let audit = Audit::new("openai_key.update", "openai_key", Some(id), details);
            ops::record(conn, &staff, audit).await?;
            Ok::<_, ApiError>(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(KeyView::new(row, Utc::now())))
}

/// `DELETE /api/admin/openai-keys/{id}` and `/api/admin/keys/{id}` → 204 (the ciphertext goes
/// with the row).
pub async fn delete(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    conn.transaction(async |conn| {
        let row = found(queries::keys::delete(conn, id).await?, "Key not found")?;
        let details = json!({ "alias": row.alias, "key_tail": row.key_tail });
        let audit = Audit::new("openai_key.delete", "openai_key", Some(id), details);
        ops::record(conn, &staff, audit).await?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/admin/keys/{id}/test` (no body) → 200 `{success, latency_ms?, model?,
/// error_message?}` for every known key; 404 for an unknown one.
pub async fn test(staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let answer = ops::keys::test(&state, &staff, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `POST /internal/openai-keys/lease` [`LeaseRequest`] → [`LeaseGrant`]: the key for one OpenAI
/// request of an automation, counted (docs/panels.md "Counted when used"). Any service with an
/// internal credential may ask; the answer holds the plaintext key and never leaves the
/// internal network.
pub async fn lease(
    _caller: InternalCaller,
    state: web::Data<AppState>,
    body: web::Json<LeaseRequest>,
) -> HttpResult {
    let grant = ops::keys::lease(&state, body.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(grant))
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
