//! A user's own notifications: list, unread count, mark read, mark all read, delete.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::CurrentUser;

use super::ListPaging;
use crate::{
    AppState,
    domain::views::NotificationView,
    queries::notifications::{self as nq, NotificationFilter},
};

/// At most this many ids in one mark-read call.
const MAX_IDS: usize = 500;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One type or several, comma-separated (payment, ticket, automation, admin, system).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `true` / `false`.
    #[serde(default)]
    pub read: Option<String>,
    /// docs/api.md's name for `read=false`.
    #[serde(default)]
    pub unread_only: Option<String>,
}

fn flag(field: &'static str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes") => Ok(Some(true)),
        Some("false" | "0" | "no") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid(field, "must be true or false")),
    }
}

/// `{items, total, page, page_size, limit, offset}`, newest first (docs/panels.md accepts `{items}`).
pub async fn list(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
    paging: web::Query<ListPaging>,
) -> HttpResult {
    let q = query.into_inner();
    let mut read = flag("read", q.read.as_deref())?;
    if flag("unread_only", q.unread_only.as_deref())? == Some(true) {
        read = Some(false);
    }
    let kinds = q
        .kind
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let filter = NotificationFilter { kinds, read };
    let window = paging.window();
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = nq::list(&mut conn, user.id, &filter, window.limit, window.offset).await?;
    let items: Vec<NotificationView> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(window.answer(items, total)))
}

pub async fn unread_count(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let count = nq::unread_count(&mut conn, user.id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": count })))
}

fn not_found() -> ApiError {
    ApiError::not_found("Notification not found")
}

/// `POST /api/notifications/mark-read/{id}`: 404 unless it is the caller's.
pub async fn mark_read_one(
    path: web::Path<i64>,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    if !nq::owned_exists(&mut conn, user.id, id).await? {
        return Err(not_found());
    }
    let updated = nq::mark_read(&mut conn, user.id, &[id]).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "updated": updated })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct IdsBody {
    #[serde(default)]
    pub ids: Vec<i64>,
}

/// `POST /api/notifications/mark-read` with `{ids: [...]}`: ids that are not the caller's are
/// ignored (never an error that would tell whether they exist).
pub async fn mark_read_many(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<IdsBody>,
) -> HttpResult {
    let ids = body.into_inner().ids;
    if ids.len() > MAX_IDS {
        return Err(ApiError::invalid("ids", "at most 500 ids at a time"));
    }
    let updated = if ids.is_empty() {
        0
    } else {
        let mut conn = state.platform.pool.get().await?;
        nq::mark_read(&mut conn, user.id, &ids).await?
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "updated": updated })))
}

pub async fn mark_all_read(user: CurrentUser, state: web::Data<AppState>) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let updated = nq::mark_all_read(&mut conn, user.id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "updated": updated })))
}

pub async fn delete(
    path: web::Path<i64>,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    match nq::delete(&mut conn, user.id, path.into_inner()).await? {
        0 => Err(not_found()),
        _ => Ok(HttpResponse::NoContent().finish()),
    }
}
