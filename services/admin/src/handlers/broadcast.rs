//! Broadcast notifications: one `notification.broadcast` event (admin's outbox, same
//! transaction as the audit entry); support turns it into one notification per matching user,
//! once per event id however often it is delivered.

use actix_web::{HttpResponse, web};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::json;
use zimmer_db::models::admin::NewAuditEntry;
use zimmer_events::contracts::NotificationBroadcast;
use zimmer_http::{ApiError, HttpResult, validate, validate::Validator};

use crate::{AppState, PRODUCER, queries, rbac::Staff};

#[derive(Debug, Deserialize)]
pub struct BroadcastBody {
    pub title: String,
    /// Also accepted as `message`.
    #[serde(alias = "message")]
    pub body: String,
    /// A role to reach, or absent / `all` for everyone.
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /api/admin/notifications/broadcast` `{title, body, role?}` → 202 `{event_id}`
pub async fn send(
    staff: Staff,
    state: web::Data<AppState>,
    body: web::Json<BroadcastBody>,
) -> HttpResult {
    let body = body.into_inner();
    let mut v = Validator::new();
    let title = v.check("title", validate::line(&body.title, 200));
    let text = v.check("body", validate::text(&body.body, 5000));
    let role = match body.role.as_deref().map(str::trim) {
        None | Some("" | "all") => None,
        Some(r) if r.parse::<zimmer_jwt::Role>().is_ok() => Some(r.to_owned()),
        Some(_) => {
            v.error(
                "role",
                "must be one of customer, support_staff, technical_team, manager, all",
            );
            None
        }
    };
    v.finish()?;
    let (Some(title), Some(text)) = (title, text) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
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
                },
            )
            .await?;
            queries::audit::record(
                conn,
                &NewAuditEntry {
                    actor_id: staff.id(),
                    action: "notification.broadcast",
                    target_type: "notification",
                    target_id: None,
                    details: &json!({
                        "event_id": event_id,
                        "title": title,
                        "role": role.as_deref().unwrap_or("all"),
                    }),
                },
            )
            .await?;
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
