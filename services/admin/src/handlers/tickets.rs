//! Tickets overview (support staff and managers): read from support's tables; status,
//! assignment and staff replies go through support's internal API, which applies the same
//! rules and notifications as its public routes.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zimmer_db::models::support::Ticket;
use zimmer_http::{ApiError, HttpResult};

use super::{
    Listing, WHOLE_LIST, found, listed, not_an_object, one_of, picked, search_text,
    user_automations::people_of,
};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner},
    queries::tickets::{self as q, TicketFilter},
    rbac::Staff,
};

const STATUSES: [&str; 5] = ["open", "pending", "in_progress", "resolved", "closed"];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    pub priority: Option<String>,
    /// A staff user id, or `none` for unassigned tickets.
    pub assigned_to: Option<String>,
    pub user_id: Option<i64>,
    pub search: Option<String>,
}

#[derive(Debug, Serialize)]
struct TicketView {
    id: i64,
    subject: String,
    status: String,
    priority: String,
    importance: String,
    category: Option<String>,
    user_id: i64,
    user_email: Option<String>,
    user_name: Option<String>,
    user_automation_id: Option<i64>,
    assigned_to: Option<i64>,
    assigned_to_name: Option<String>,
    messages_count: i64,
    /// The whole conversation as one string (the user panel's `message`, README.md); the
    /// admin dashboard reads the same text as `description`.
    message: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

/// The panel's thread string: the first message, then each later one as
/// `"\n\n--- Reply from <author name> ---\n" + text` (built as support builds it).
fn flatten(
    first: &str,
    thread: &[(i64, String)],
    people: &HashMap<i64, (String, String)>,
) -> String {
    let mut iter = thread.iter();
    let mut out = match iter.next() {
        Some((_, body)) => body.clone(),
        None => first.to_owned(),
    };
    for (author, body) in iter {
        out.push_str("\n\n--- Reply from ");
        out.push_str(people.get(author).map_or("", |p| p.1.as_str()));
        out.push_str(" ---\n");
        out.push_str(body);
    }
    out
}

fn view(
    t: Ticket,
    n: i64,
    thread: &[(i64, String)],
    people: &HashMap<i64, (String, String)>,
) -> TicketView {
    let user = people.get(&t.user_id);
    let text = flatten(&t.description, thread, people);
    TicketView {
        message: text.clone(),
        description: text,
        id: t.id,
        subject: t.title,
        status: t.status,
        priority: t.priority,
        importance: t.importance,
        category: t.category,
        user_id: t.user_id,
        user_email: user.map(|u| u.0.clone()),
        user_name: user.map(|u| u.1.clone()),
        user_automation_id: t.user_automation_id,
        assigned_to: t.assigned_to,
        assigned_to_name: t
            .assigned_to
            .and_then(|a| people.get(&a))
            .map(|u| u.1.clone()),
        messages_count: n,
        created_at: t.created_at,
        updated_at: t.updated_at,
        closed_at: t.closed_at,
    }
}

/// `GET /api/admin/tickets?status=&priority=&assigned_to=&user_id=&search=`: most recently
/// active first.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<ListQuery>,
) -> HttpResult {
    let (assigned_to, unassigned) = match query.assigned_to.as_deref().map(str::trim) {
        None | Some("") => (None, false),
        Some("none" | "null" | "unassigned") => (None, true),
        Some(raw) => (
            Some(
                raw.parse::<i64>()
                    .map_err(|_| ApiError::invalid("assigned_to", "must be a user id or `none`"))?,
            ),
            false,
        ),
    };
    let filter = TicketFilter {
        status: one_of("status", query.status.as_deref(), &STATUSES)?,
        priority: one_of("priority", query.priority.as_deref(), &PRIORITIES)?,
        assigned_to,
        unassigned,
        user_id: query.user_id,
        search: search_text(query.search.as_deref())?,
    };
    let page = query.page(WHOLE_LIST);
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::list(&mut conn, &filter, page.offset, page.limit).await?;
    let ticket_ids: Vec<i64> = rows.iter().map(|(t, _)| t.id).collect();
    let mut threads: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for (ticket, author, body) in q::threads(&mut conn, &ticket_ids).await? {
        threads.entry(ticket).or_default().push((author, body));
    }
    let ids = rows
        .iter()
        .flat_map(|(t, _)| [Some(t.user_id), t.assigned_to])
        .flatten()
        .chain(threads.values().flatten().map(|(a, _)| *a));
    let people = people_of(&mut conn, ids).await?;
    drop(conn);
    let items: Vec<TicketView> = rows
        .into_iter()
        .map(|(t, n)| {
            let thread = threads.get(&t.id).map_or(&[][..], Vec::as_slice);
            view(t, n, thread, &people)
        })
        .collect();
    listed("tickets", items, total, &page)
}

/// `GET /api/admin/tickets/{id}`: the ticket with its whole thread.
pub async fn get(_staff: Staff, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResult {
    let id = path.into_inner();
    let mut conn = state.platform.pool.get().await?;
    let t = found(q::get(&mut conn, id).await?, "Ticket not found")?;
    let (messages, attachments) = q::thread(&mut conn, id).await?;
    let ids = messages.iter().map(|m| m.author_id);
    let ids = ids.chain([t.user_id]).chain(t.assigned_to);
    let people = people_of(&mut conn, ids).await?;
    drop(conn);
    let description = t.description.clone();
    let flat: Vec<(i64, String)> = messages
        .iter()
        .map(|m| (m.author_id, m.body.clone()))
        .collect();
    let thread: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            let files: Vec<Value> = attachments
                .iter()
                .filter(|a| a.message_id == m.id)
                .map(|a| {
                    json!({
                        "id": a.id,
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                    })
                })
                .collect();
            json!({
                "id": m.id,
                "author_id": m.author_id,
                "author_name": people.get(&m.author_id).map(|p| &p.1),
                "is_staff": m.is_staff,
                "body": m.body,
                "attachments": files,
                "created_at": m.created_at,
            })
        })
        .collect();
    let mut body = serde_json::to_value(view(t, thread.len() as i64, &flat, &people))
        .map_err(ApiError::internal)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("description".into(), json!(description));
        map.insert("messages".into(), Value::Array(thread));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `{…}` with the acting staff member added (any `actor_id` sent by the client is replaced).
fn acting(body: Value, staff: &Staff) -> Result<Value, ApiError> {
    match body {
        Value::Object(mut map) => {
            map.insert("actor_id".into(), json!(staff.id()));
            Ok(Value::Object(map))
        }
        _ => Err(not_an_object()),
    }
}

/// `PUT /api/admin/tickets/{id}` `{status?, priority?, importance?, assigned_to?, message?}`
pub async fn update(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<Value>,
) -> HttpResult {
    let id = path.into_inner();
    let body = acting(body.into_inner(), &staff)?;
    let path = format!("/internal/tickets/{id}");
    let call = OwnerCall::new(Service::Support, Method::PUT, path);
    let reply = call_owner(&state, &staff, call.body(&body), |_| {
        let mut changes = picked(&body, &["status", "priority", "importance", "assigned_to"]);
        if body.get("message").is_some() {
            changes.insert("replied".into(), json!(true));
        }
        Audit::new("ticket.update", "ticket", Some(id), Value::Object(changes))
    })
    .await?;
    Ok(HttpResponse::Ok().json(reply.body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TicketReplyBody)]
pub struct ReplyBody {
    pub message: String,
}

/// `POST /api/admin/tickets/{id}/messages` `{message}` → 201: a staff reply (support notifies
/// the customer).
pub async fn reply(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<ReplyBody>,
) -> HttpResult {
    let id = path.into_inner();
    let path = format!("/internal/tickets/{id}/messages");
    let call = OwnerCall::new(Service::Support, Method::POST, path)
        .json(json!({ "actor_id": staff.id(), "message": body.message }));
    let reply = call_owner(&state, &staff, call, |_| {
        let details = json!({ "chars": body.message.chars().count() });
        Audit::new("ticket.reply", "ticket", Some(id), details)
    })
    .await?;
    Ok(HttpResponse::Created().json(reply.body))
}
