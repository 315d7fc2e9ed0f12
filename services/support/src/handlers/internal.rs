//! The internal API admin calls when a staff member acts on a ticket from the dashboard
//! (admin never writes support's tables). `X-Internal-Token` required; the acting staff
//! member is named in the body and must be an active support_staff or manager, and the same
//! rules as on the public routes apply (transitions, assignee must be staff, notifications,
//! events).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use zimmer_http::{ApiError, HttpResult, InternalCaller, validate};

use zimmer_events::contracts::internal::notifications::{
    self as contract, DirectNotifications, DirectNotificationsCreated,
};

use super::tickets::{MAX_MESSAGE_CHARS, ThreadQuery, UpdateBody};
use crate::{
    AppState,
    domain::texts::Draft,
    ops::{self, Actor, is_ticket_staff_role},
    queries::tickets as tq,
};

/// The staff member admin acts for.
async fn staff_actor(state: &AppState, actor_id: i64) -> Result<Actor, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    match tq::user_role(&mut conn, actor_id).await? {
        Some((role, true)) if is_ticket_staff_role(&role) => Ok(Actor {
            id: actor_id,
            ticket_staff: true,
        }),
        _ => Err(ApiError::forbidden(
            "The acting user is not an active support staff member or manager",
        )),
    }
}

/// `GET /internal/tickets/{id}`: any ticket with its messages (all of a thread within the
/// per-ticket cap by default; `messages_limit`/`messages_offset` as on the public route).
pub async fn get(
    _caller: InternalCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
    query: web::Query<ThreadQuery>,
) -> HttpResult {
    let page = query.page(ops::MAX_MESSAGES_PER_TICKET)?;
    let view = ops::ticket_page(&state, path.into_inner(), page, |_| true).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ActingUpdate {
    pub actor_id: i64,
    #[serde(flatten)]
    pub update: UpdateBody,
}

/// `PUT /internal/tickets/{id}`: `{actor_id, status?, priority?, importance?, assigned_to?,
/// message?}` as that staff member.
pub async fn update(
    _caller: InternalCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
    body: web::Json<ActingUpdate>,
) -> HttpResult {
    let body = body.into_inner();
    let update = body.update.validate()?;
    let actor = staff_actor(&state, body.actor_id).await?;
    let view = ops::update_ticket(&state, actor, path.into_inner(), update).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ActingMessage {
    pub actor_id: i64,
    pub message: String,
}

/// `POST /internal/tickets/{id}/messages`: `{actor_id, message}`, a staff reply.
pub async fn add_message(
    _caller: InternalCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
    body: web::Json<ActingMessage>,
) -> HttpResult {
    let body = body.into_inner();
    let text = validate::text(&body.message, MAX_MESSAGE_CHARS)
        .map_err(|m| ApiError::invalid("message", m))?;
    let actor = staff_actor(&state, body.actor_id).await?;
    let view = ops::add_message(&state, actor, path.into_inner(), text, None).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `POST /internal/notifications` [`DirectNotifications`] → [`DirectNotificationsCreated`]:
/// notifications to chosen users, sent by staff from the dashboard (docs/panels.md "Fallback log
/// and notifications"). Synchronous so `created` is exact; the live stream delivers them at
/// commit. Only admin calls it.
pub async fn notify_users(
    caller: InternalCaller,
    state: web::Data<AppState>,
    body: web::Json<DirectNotifications>,
) -> HttpResult {
    caller.require(&["admin"])?;
    let body = body.into_inner();
    let mut v = validate::Validator::new();
    if body.user_ids.is_empty() {
        v.error(
            "user_ids",
            "must name at least one user (the broadcast is for everyone)",
        );
    } else if body.user_ids.len() > contract::MAX_RECIPIENTS {
        v.error("user_ids", "must hold at most 10,000 ids");
    }
    let kind = v.check("type", contract::check_type(&body.kind));
    let title = v.check(
        "title",
        validate::line(&body.title, contract::MAX_TITLE_CHARS),
    );
    let text = if body.body.trim().is_empty() {
        Some(String::new())
    } else {
        v.check("body", validate::text(&body.body, contract::MAX_BODY_CHARS))
    };
    let data = v.check("data", contract::check_data(body.data.as_ref()));
    v.finish()?;
    let (Some(kind), Some(title), Some(body_text), Some(data)) = (kind, title, text, data) else {
        return Err(ApiError::bad_request("Invalid request"));
    };
    let actor = staff_actor(&state, body.actor_id).await?;
    let mut ids = body.user_ids;
    ids.sort_unstable();
    ids.dedup();
    let draft = Draft {
        kind,
        title,
        body: body_text,
        data,
    };
    let mut conn = state.platform.pool.get().await?;
    let created = ops::notifications::notify_users(&mut conn, &ids, &draft).await?;
    let created = i64::try_from(created).unwrap_or(i64::MAX);
    let given = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    tracing::info!(
        actor_id = actor.id,
        created,
        "notifications sent to chosen users"
    );
    Ok(HttpResponse::Ok().json(DirectNotificationsCreated {
        created,
        skipped: given.saturating_sub(created),
    }))
}
