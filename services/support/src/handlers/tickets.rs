//! Tickets: create (JSON or multipart with one attachment), list, view, update, reply, and
//! attachment download.

use std::time::Duration;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE},
    web,
};
use serde::Deserialize;
use zimmer_events::contracts::internal::nullable;
use zimmer_http::{
    ApiError, HttpResult,
    validate::{self, Validator},
};
use zimmer_jwt::CurrentUser;

use super::{
    ListPaging,
    input::{self, Body, RawFile, Upload, form_field},
    rate_limit,
};
use crate::{
    AppState,
    domain::views::{MessagePage, TicketView},
    domain::{
        attachment::content_disposition,
        status::{parse_priority, parse_status},
    },
    ops::{self, Actor, NewTicketInput, TicketUpdate},
    queries::tickets::{self as tq, Assigned, TicketFilter},
};

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 10_000;
const MAX_CATEGORY_CHARS: usize = 50;

/// `POST /api/tickets` as JSON (docs/api.md). The panel's multipart form carries the same names.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    #[serde(default)]
    pub subject: Option<String>,
    /// Older clients call the subject `title`.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The customer's choice; `priority` is accepted as its synonym (docs/api.md's name).
    #[serde(default)]
    pub importance: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub user_automation_id: Option<i64>,
}

impl CreateBody {
    fn from_form(fields: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        let user_automation_id = match form_field(fields, "user_automation_id") {
            None => None,
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid("user_automation_id", "must be a number"))?,
            ),
        };
        // `user_id` is ignored on purpose: the user is the token's (docs/panels.md).
        Ok(Self {
            subject: form_field(fields, "subject"),
            title: form_field(fields, "title"),
            message: form_field(fields, "message"),
            description: form_field(fields, "description"),
            importance: form_field(fields, "importance"),
            priority: form_field(fields, "priority"),
            category: form_field(fields, "category"),
            user_automation_id,
        })
    }

    fn validate(self) -> Result<NewTicketInput, ApiError> {
        let mut v = Validator::new();
        let subject = v.check(
            "subject",
            validate::line(
                self.subject.or(self.title).as_deref().unwrap_or_default(),
                MAX_SUBJECT_CHARS,
            ),
        );
        let message = v.check(
            "message",
            validate::text(
                self.message
                    .or(self.description)
                    .as_deref()
                    .unwrap_or_default(),
                MAX_MESSAGE_CHARS,
            ),
        );
        let importance = match self.importance.or(self.priority) {
            None => Some("medium".to_owned()),
            Some(p) => v.check("importance", parse_priority(&p)),
        };
        let category = match self.category.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => v.check("category", validate::line(c, MAX_CATEGORY_CHARS)),
        };
        v.finish()?;
        match (subject, message, importance) {
            (Some(subject), Some(message), Some(importance)) => Ok(NewTicketInput {
                subject,
                message,
                importance,
                category,
                user_automation_id: self.user_automation_id,
            }),
            _ => Err(ApiError::bad_request("Invalid ticket")),
        }
    }
}

fn actor(user: &CurrentUser) -> Actor {
    Actor::new(user.id, user.role)
}

/// A new ticket's or a reply's body: JSON, or multipart with at most one attachment.
async fn read_body(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Body, ApiError> {
    let limits = &state.config;
    input::read_body(req, payload, limits.json_limit, limits.max_attachment_bytes).await
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    let st = state.get_ref();
    rate_limit(
        st,
        &format!("support:tickets:{}", user.id),
        st.config.tickets_per_hour,
        Duration::from_secs(3600),
    )
    .await?;
    let body = read_body(st, &req, payload).await?;
    let (fields, file) = match body {
        Body::Json(v) => (input::from_json::<CreateBody>(v)?, None),
        Body::Form { fields, file } => (CreateBody::from_form(&fields)?, file),
    };
    let ticket = fields.validate()?;
    let upload = file.map(input::check_upload).transpose()?;
    let view = ops::create_ticket(st, actor(&user), ticket, upload).await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One status or several, comma-separated.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    /// Staff only: a user id, `me`, or `none` for unassigned tickets.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// Staff only: one customer's tickets.
    #[serde(default)]
    pub user_id: Option<i64>,
}

fn comma_list(
    v: &mut Validator,
    field: &'static str,
    raw: Option<&str>,
    parse: fn(&str) -> Result<String, &'static str>,
) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| v.check(field, parse(s)))
        .collect()
}

/// Customers (and technical_team) see their own tickets; support staff and managers see all,
/// with `status`, `priority`, `assigned_to` and `user_id` filters.
pub async fn list(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
    paging: web::Query<ListPaging>,
) -> HttpResult {
    let q = query.into_inner();
    let actor = actor(&user);
    let mut v = Validator::new();
    let mut filter = TicketFilter {
        statuses: comma_list(&mut v, "status", q.status.as_deref(), parse_status),
        priorities: comma_list(&mut v, "priority", q.priority.as_deref(), parse_priority),
        ..Default::default()
    };
    if actor.ticket_staff {
        filter.user_id = q.user_id;
        filter.assigned = match q.assigned_to.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("me") => Some(Assigned::To(user.id)),
            Some("none" | "unassigned" | "null") => Some(Assigned::Nobody),
            Some(id) => match id.parse::<i64>() {
                Ok(id) => Some(Assigned::To(id)),
                Err(_) => {
                    v.error("assigned_to", "must be a user id, me or none");
                    None
                }
            },
        };
    } else {
        filter.owner = Some(user.id);
    }
    v.finish()?;
    let window = paging.window();
    let mut conn = state.platform.pool.get().await?;
    let (tickets, total) =
        tq::list_tickets(&mut conn, &filter, window.limit, window.offset).await?;
    let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
    let items = if actor.ticket_staff {
        // Staff lists span every customer's tickets: the last message and the count only
        // (the thread is one request away), so a page costs the same whatever was written.
        let last = tq::last_messages(&mut conn, &ids).await?;
        let counts = tq::message_counts(&mut conn, &ids).await?;
        TicketView::summaries(tickets, last, counts)
    } else {
        // A customer's own list carries each conversation as one string (the panel reads the
        // thread from it); the thread limits bound its size.
        let messages = tq::messages_of(&mut conn, &ids).await?;
        TicketView::list(tickets, messages)
    };
    drop(conn);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tickets": items,
        "total": total,
        "page": window.page,
        "page_size": window.page_size,
    })))
}

/// Which messages a ticket view shows: `messages_limit` (1 to 200) and `messages_offset`
/// (from the start of the conversation; absent = the last page).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    #[serde(default)]
    pub messages_limit: Option<i64>,
    #[serde(default)]
    pub messages_offset: Option<i64>,
}

impl ThreadQuery {
    pub fn page(&self, default_limit: i64) -> Result<MessagePage, ApiError> {
        let mut v = Validator::new();
        let limit = match self.messages_limit {
            None => default_limit,
            Some(l) if (1..=ops::MAX_MESSAGES_PER_TICKET).contains(&l) => l,
            Some(_) => {
                v.error(
                    "messages_limit",
                    "must be between 1 and 200 (messages per ticket are capped at 200)",
                );
                default_limit
            }
        };
        if self.messages_offset.is_some_and(|o| o < 0) {
            v.error("messages_offset", "must not be negative");
        }
        v.finish()?;
        Ok(MessagePage {
            limit,
            offset: self.messages_offset,
        })
    }
}

pub async fn get(
    path: web::Path<i64>,
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<ThreadQuery>,
) -> HttpResult {
    let page = query.page(ops::DEFAULT_MESSAGES_PAGE)?;
    let actor = actor(&user);
    let view = ops::ticket_page(&state, path.into_inner(), page, |t| actor.can_see(t)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/tickets/{id}`: `{status?, priority?, importance?, assigned_to?}` and/or `{message}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateBody {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub importance: Option<String>,
    /// Absent: unchanged; `null`: unassigned.
    #[serde(default, with = "nullable")]
    pub assigned_to: Option<Option<i64>>,
    #[serde(default)]
    pub message: Option<String>,
}

impl UpdateBody {
    pub fn validate(self) -> Result<TicketUpdate, ApiError> {
        let mut v = Validator::new();
        let update = TicketUpdate {
            status: self
                .status
                .as_deref()
                .and_then(|s| v.check("status", parse_status(s))),
            priority: self
                .priority
                .as_deref()
                .and_then(|p| v.check("priority", parse_priority(p))),
            importance: self
                .importance
                .as_deref()
                .and_then(|p| v.check("importance", parse_priority(p))),
            assigned_to: self.assigned_to,
            message: self
                .message
                .as_deref()
                .and_then(|m| v.check("message", validate::text(m, MAX_MESSAGE_CHARS))),
        };
        v.finish()?;
        let empty = update.status.is_none()
            && update.priority.is_none()
            && update.importance.is_none()
            && update.assigned_to.is_none()
            && update.message.is_none();
        if empty {
            return Err(ApiError::invalid(
                "body",
                "nothing to change: send status, priority, importance, assigned_to or message",
            ));
        }
        Ok(update)
    }
}

pub async fn update(
    path: web::Path<i64>,
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<UpdateBody>,
) -> HttpResult {
    let st = state.get_ref();
    let update = body.into_inner().validate()?;
    let actor = actor(&user);
    if update.message.is_some() && !actor.ticket_staff {
        message_rate_limit(st, user.id).await?;
    }
    let view = ops::update_ticket(st, actor, path.into_inner(), update).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/tickets/{id}` (no body): managers only (docs/rbac.md "delete a ticket"). The
/// ticket is hidden from every list, count and view; its messages stay (docs/panels.md "Ticket
/// delete"). Unknown or already deleted → 404; 204.
pub async fn delete(
    path: web::Path<i64>,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    if user.role != zimmer_jwt::Role::Manager {
        return Err(ApiError::forbidden("Only a manager may delete a ticket"));
    }
    ops::delete_ticket(state.get_ref(), user.id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn message_rate_limit(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    rate_limit(
        state,
        &format!("support:messages:{user_id}"),
        state.config.messages_per_10_min,
        Duration::from_secs(600),
    )
    .await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct MessageBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// The message text, which may be empty only when a file is attached.
fn message_text(raw: Option<String>, has_file: bool) -> Result<String, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.trim().is_empty() && has_file {
        return Ok(String::new());
    }
    validate::text(&raw, MAX_MESSAGE_CHARS).map_err(|m| ApiError::invalid("message", m))
}

/// `POST /api/tickets/{id}/messages`: `{message}` or multipart with one attachment.
pub async fn add_message(
    path: web::Path<i64>,
    req: HttpRequest,
    payload: web::Payload,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    let st = state.get_ref();
    let actor = actor(&user);
    if !actor.ticket_staff {
        message_rate_limit(st, user.id).await?;
    }
    let body = read_body(st, &req, payload).await?;
    let (text, file): (Option<String>, Option<RawFile>) = match body {
        Body::Json(v) => {
            let b = input::from_json::<MessageBody>(v)?;
            (b.message.or(b.body), None)
        }
        Body::Form { fields, file } => (
            form_field(&fields, "message").or_else(|| form_field(&fields, "body")),
            file,
        ),
    };
    let text = message_text(text, file.is_some())?;
    let upload: Option<Upload> = file.map(input::check_upload).transpose()?;
    let view = ops::add_message(st, actor, path.into_inner(), text, upload).await?;
    Ok(HttpResponse::Created().json(view))
}

/// The file of a message, for the ticket's owner and ticket staff (404 for anyone else).
/// Served as a download with the type the bytes were checked to be, never rendered inline.
pub async fn attachment(
    path: web::Path<(i64, i64)>,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> HttpResult {
    let (ticket_id, message_id) = path.into_inner();
    let actor = actor(&user);
    let found = {
        let mut conn = state.platform.pool.get().await?;
        match tq::ticket_by_id(&mut conn, ticket_id).await? {
            Some(t) if actor.can_see(&t) => {
                tq::attachment_of(&mut conn, ticket_id, message_id).await?
            }
            _ => None,
        }
    };
    let a = found.ok_or_else(|| ApiError::not_found("Attachment not found"))?;
    let bytes = match state.store.read(&a.storage_key).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(
                attachment_id = a.id,
                "attachment file is missing from storage"
            );
            return Err(ApiError::not_found("Attachment not found"));
        }
        Err(e) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "reading attachment: {e}"
            )));
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, a.content_type.as_str()))
        .insert_header((CONTENT_DISPOSITION, content_disposition(&a.filename)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}
