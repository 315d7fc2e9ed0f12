//! Notifications from staff (docs/panels.md "Fallback log and notifications"):
//! - broadcast: one `notification.broadcast` event (admin's outbox, same transaction as the
//!   audit entry); support turns it into one notification per matching user, once per event id
//!   however often it is delivered;
//! - to chosen users: support's internal API, synchronously, so `created` is exact.

use actix_web::{HttpResponse, web};
use diesel_async::AsyncConnection;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use zimmer_events::contracts::{
    NotificationBroadcast,
    internal::notifications::{self as contract, DirectNotifications, DirectNotificationsCreated},
};
use zimmer_http::{ApiError, HttpResult, validate, validate::Validator};

use super::to_json;
use crate::{
    AppState, PRODUCER,
    clients::Service,
    ops::{self, Audit, OwnerCall, call_owner, typed},
    queries,
    rbac::Staff,
};

/// The four roles a broadcast may target (docs/rbac.md).
const ROLES: &str = "customer, support_staff, technical_team, manager";

/// What a notification says, checked.
struct Content {
    kind: &'static str,
    title: String,
    body: String,
    data: serde_json::Value,
}

/// What both calls send: `type?`, `title`, `body` (also accepted as `message`), `data?`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = NotificationContent)]
pub struct ContentBody {
    /// system, payment, ticket, automation or admin.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub title: String,
    /// Also accepted as `message`.
    #[serde(default, alias = "message")]
    pub body: String,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl ContentBody {
    /// Checked as both calls check it: `type` defaults to `admin` (docs/api.md's broadcast had
    /// none), the body may be empty. `None` when `v` has an error.
    fn check(&self, v: &mut Validator) -> Option<Content> {
        let kind = match self
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            None => Some("admin"),
            Some(k) => v.check("type", contract::check_type(k)),
        };
        let title = v.check(
            "title",
            validate::line(&self.title, contract::MAX_TITLE_CHARS),
        );
        let body = if self.body.trim().is_empty() {
            Some(String::new())
        } else {
            v.check("body", validate::text(&self.body, contract::MAX_BODY_CHARS))
        };
        let data = v.check("data", contract::check_data(self.data.as_ref()));
        Some(Content {
            kind: kind?,
            title: title?,
            body: body?,
            data: data?,
        })
    }
}

/// The content of a request whose checks all passed (`v` had no error, so it is there).
fn checked(v: Validator, content: Option<Content>) -> Result<Content, ApiError> {
    v.finish()?;
    content.ok_or_else(|| ApiError::bad_request("Invalid request"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BroadcastBody {
    #[serde(flatten)]
    pub content: ContentBody,
    /// One of the four roles, or absent / `null` / `""` / `all` for everyone.
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /api/admin/notifications/broadcast` `{type?, title, body, role?, data?}` → 202
/// `{created, event_id, status, role}`; `created` = the active accounts matching now.
pub async fn send(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<BroadcastBody>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    let content = body.content.check(&mut v);
    let role = match body.role.as_deref().map(str::trim) {
        None | Some("" | "all") => None,
        Some(r) if r.parse::<zimmer_jwt::Role>().is_ok() => Some(r.to_owned()),
        Some(_) => {
            v.error(
                "role",
                format!("must be one of {ROLES} (or absent for everyone)"),
            );
            None
        }
    };
    let Content {
        kind,
        title,
        body: text,
        data,
    } = checked(v, content)?;
    let mut conn = state.platform.pool.get().await?;
    // The admin dashboard shows `created`: the active accounts the event reaches now.
    let created = queries::users::count_active(&mut conn, role.as_deref()).await?;
    let event_id = conn
        .transaction(async |conn| {
            let event_id = zimmer_events::enqueue_event(
                conn,
                PRODUCER,
                &NotificationBroadcast {
                    title: title.clone(),
                    body: text.clone(),
                    role: role.clone(),
                    actor_id: Some(staff.id()),
                    kind: Some(kind.to_owned()),
                    data: Some(data),
                },
            )
            .await?;
            let details = json!({
                "event_id": event_id,
                "type": kind,
                "title": title,
                "role": role.as_deref().unwrap_or("all"),
            });
            let audit = Audit::new(
                "notification.broadcast",
                "notification",
                None::<i64>,
                details,
            );
            ops::record(conn, &staff, audit).await?;
            Ok::<_, ApiError>(event_id)
        })
        .await?;
    Ok(HttpResponse::Accepted().json(json!({
        "created": created,
        "event_id": event_id,
        "status": "queued",
        "role": role.as_deref().unwrap_or("all"),
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DirectBody {
    #[serde(default)]
    pub user_ids: Vec<i64>,
    #[serde(flatten)]
    pub content: ContentBody,
}

/// `POST /api/admin/notifications` `{user_ids, type, title, body, data?}` → 200 `{created,
/// skipped}`: one notification per distinct id of an existing, active account (others skipped),
/// made by support's internal API before the answer.
pub async fn send_to_users(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<DirectBody>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    if body.user_ids.is_empty() {
        v.error(
            "user_ids",
            "must name at least one user (the broadcast is for everyone)",
        );
    } else if body.user_ids.len() > contract::MAX_RECIPIENTS {
        v.error("user_ids", "must hold at most 10,000 ids");
    }
    let content = body.content.check(&mut v);
    let content = checked(v, content)?;
    let request = DirectNotifications {
        user_ids: body.user_ids,
        kind: content.kind.to_owned(),
        title: content.title,
        body: content.body,
        data: Some(content.data),
        actor_id: staff.id(),
    };
    let call = OwnerCall::new(Service::Support, Method::POST, "/internal/notifications")
        .json(to_json(&request)?);
    let reply = call_owner(&state, &staff, call, |reply| {
        let details = json!({
            "type": request.kind,
            "title": request.title,
            "recipients": request.user_ids.len(),
            "created": reply.body.get("created"),
        });
        Audit::new("notification.send", "notification", None::<i64>, details)
    })
    .await?;
    let answer: DirectNotificationsCreated = typed(Service::Support, reply)?;
    Ok(HttpResponse::Ok().json(answer))
}
