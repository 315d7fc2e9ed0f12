//! Ticket operations shared by the public routes and the internal API admin calls: each is one
//! transaction holding the change, its outbox event and the notifications it causes.
//! Attachment bytes are written before the transaction (never while holding a connection's
//! transaction open on file I/O) and removed again if the transaction does not commit.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use zimmer_db::models::support::{
    NewTicket, NewTicketAttachment, NewTicketMessage, Ticket, TicketAttachment, TicketMessage,
};
use zimmer_events::{
    Envelope,
    contracts::{TicketCreated, TicketReplied},
};
use zimmer_http::ApiError;
use zimmer_jwt::Role;

use crate::{
    AppState, PRODUCER,
    domain::{
        attachment::Upload,
        status::{self, Side, TransitionError},
        texts,
        views::{MessagePage, MessageView, TicketView},
    },
    ops::notifications,
    queries::tickets as tq,
};

/// At most this many messages in one ticket (the first included); then a new ticket is needed.
pub const MAX_MESSAGES_PER_TICKET: i64 = 200;
/// At most this many characters in all messages of one ticket together (ten full-length
/// messages): what one ticket's thread can cost to store, list and read is bounded.
pub const MAX_THREAD_CHARS: i64 = 100_000;
/// Messages shown where one ticket is shown, unless the caller asks for another page.
pub const DEFAULT_MESSAGES_PAGE: i64 = 50;

/// The default page of a ticket view: its last [`DEFAULT_MESSAGES_PAGE`] messages.
pub const DEFAULT_PAGE: MessagePage = MessagePage {
    limit: DEFAULT_MESSAGES_PAGE,
    offset: None,
};

/// Roles that see and work on every ticket (docs/rbac.md); technical_team has no ticket access.
pub const TICKET_STAFF: [Role; 2] = [Role::SupportStaff, Role::Manager];

pub fn is_ticket_staff_role(role: &str) -> bool {
    TICKET_STAFF.iter().any(|r| r.as_str() == role)
}

/// Who acts on a ticket.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: i64,
    pub ticket_staff: bool,
}

impl Actor {
    pub fn new(id: i64, role: Role) -> Self {
        Self {
            id,
            ticket_staff: TICKET_STAFF.contains(&role),
        }
    }

    /// Owners see their tickets; ticket staff see all. Anyone else gets 404, never 403: the
    /// ticket's existence is not revealed.
    pub fn can_see(&self, t: &Ticket) -> bool {
        t.user_id == self.id || self.ticket_staff
    }

    /// Staff on someone else's ticket act as staff; on their own ticket, as its customer.
    pub fn side(&self, t: &Ticket) -> Side {
        if self.ticket_staff && t.user_id != self.id {
            Side::Staff
        } else {
            Side::Customer
        }
    }
}

pub fn not_found() -> ApiError {
    ApiError::not_found("Ticket not found")
}

fn closed() -> ApiError {
    ApiError::conflict(
        "ticket_closed",
        "This ticket is closed; please open a new ticket",
    )
}

fn transition_error(e: TransitionError) -> ApiError {
    match e {
        TransitionError::Closed => closed(),
        TransitionError::CustomerMayOnlyClose => {
            ApiError::forbidden("You can only close your ticket or add a message to it")
        }
    }
}

/// A checked, stored attachment waiting for its row.
struct Stored<'a> {
    upload: &'a Upload,
    key: String,
}

async fn store<'a>(
    state: &AppState,
    upload: Option<&'a Upload>,
) -> Result<Option<Stored<'a>>, ApiError> {
    match upload {
        None => Ok(None),
        Some(upload) => {
            let key =
                state.store.save(&upload.bytes).await.map_err(|e| {
                    ApiError::internal(anyhow::anyhow!("storing an attachment: {e}"))
                })?;
            Ok(Some(Stored { upload, key }))
        }
    }
}

async fn unstore(state: &AppState, stored: Option<Stored<'_>>) {
    if let Some(s) = stored {
        state.store.remove(&s.key).await;
    }
}

/// The ticket view with its default page of messages (authors and attachments).
pub async fn detail(conn: &mut AsyncPgConnection, ticket: Ticket) -> Result<TicketView, ApiError> {
    detail_page(conn, ticket, DEFAULT_PAGE).await
}

/// Ticket `id` with one page of its messages, when `visible` lets the caller see it (404
/// otherwise, as for a ticket that does not exist).
pub async fn ticket_page(
    state: &AppState,
    id: i64,
    page: MessagePage,
    visible: impl Fn(&Ticket) -> bool,
) -> Result<TicketView, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    let ticket = tq::ticket_by_id(&mut conn, id)
        .await?
        .filter(|t| visible(t))
        .ok_or_else(not_found)?;
    detail_page(&mut conn, ticket, page).await
}

/// The ticket view with one page of its messages.
async fn detail_page(
    conn: &mut AsyncPgConnection,
    ticket: Ticket,
    page: MessagePage,
) -> Result<TicketView, ApiError> {
    let (count, _) = tq::thread_size(conn, ticket.id).await?;
    let offset = page.start(count);
    let messages = tq::messages_page(conn, ticket.id, page.limit, offset).await?;
    let ids: Vec<i64> = messages.iter().map(|(m, _)| m.id).collect();
    let attachments = tq::attachments_of(conn, &ids).await?;
    Ok(TicketView::detail(
        ticket,
        messages,
        attachments,
        count,
        offset,
        page.limit,
    ))
}

/// Refuses a message that would take the thread past [`MAX_MESSAGES_PER_TICKET`] or
/// [`MAX_THREAD_CHARS`]. Called with the ticket row locked, so parallel messages cannot
/// both fit into the last slot.
async fn check_thread_room(
    conn: &mut AsyncPgConnection,
    ticket_id: i64,
    text: &str,
) -> Result<(), ApiError> {
    let (count, chars) = tq::thread_size(conn, ticket_id).await?;
    if count >= MAX_MESSAGES_PER_TICKET {
        return Err(ApiError::conflict(
            "ticket_thread_full",
            format!(
                "This ticket has reached {MAX_MESSAGES_PER_TICKET} messages; please open a new ticket"
            ),
        ));
    }
    let adding = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    if chars.saturating_add(adding) > MAX_THREAD_CHARS {
        let left = (MAX_THREAD_CHARS - chars).max(0);
        return Err(ApiError::conflict(
            "ticket_thread_too_long",
            format!(
                "This ticket's conversation is limited to {MAX_THREAD_CHARS} characters and \
                 {left} are left; send a shorter message or open a new ticket"
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewTicketInput {
    pub subject: String,
    pub message: String,
    pub importance: String,
    pub category: Option<String>,
    pub user_automation_id: Option<i64>,
}

/// Opens a ticket with its first message (and attachment); emits `ticket.created`.
///
/// One statement ([`tq::create_ticket`]): one round trip, and the ticket, message, attachment
/// row and outbox event commit together (or not at all) before the answer. The relay is woken
/// in-process after that commit instead of by a `pg_notify` in the transaction: PostgreSQL
/// serialises notifying commits (one global lock held through the WAL flush), which capped
/// ticket creation at one commit per flush.
pub async fn create_ticket(
    state: &AppState,
    actor: Actor,
    input: NewTicketInput,
    upload: Option<Upload>,
) -> Result<TicketView, ApiError> {
    // The event's id is chosen here; the statement writes the ticket id into its data.
    let envelope = Envelope::of(
        PRODUCER,
        &TicketCreated {
            ticket_id: 0,
            user_id: actor.id,
            priority: input.importance.clone(),
        },
    )
    .map_err(ApiError::internal)?;
    let (payload, headers) = zimmer_events::outbox_json(&envelope).map_err(ApiError::internal)?;
    // Handed to the relay in memory after the commit when it has room (one statement less
    // per event); otherwise written for its poll, as every other event is.
    let handoff = state.relay.reserve();
    let stored = store(state, upload.as_ref()).await?;
    let result = async {
        let attachment = match &stored {
            Some(s) => Some(tq::NewAttachmentFile {
                filename: &s.upload.filename,
                content_type: s.upload.kind.content_type(),
                size: i64::try_from(s.upload.bytes.len()).map_err(ApiError::internal)?,
                storage_key: &s.key,
            }),
            None => None,
        };
        let new = tq::CreateTicket {
            ticket: &NewTicket {
                user_id: actor.id,
                title: &input.subject,
                description: &input.message,
                // Triage starts from what the customer chose.
                priority: &input.importance,
                importance: &input.importance,
                category: input.category.as_deref(),
                user_automation_id: input.user_automation_id,
            },
            attachment,
            event_id: envelope.id,
            producer: PRODUCER,
            event_type: &envelope.event_type,
            event_payload: &payload,
            event_headers: &headers,
            event_lease_secs: handoff.as_ref().map(|h| h.lease_secs()),
        };
        let mut conn = state.platform.pool.get().await?;
        let created = tq::create_ticket(&mut conn, &new).await?;
        drop(conn);
        created.ok_or_else(|| {
            ApiError::invalid("user_automation_id", "is not one of your automations")
        })
    }
    .await;
    match result {
        Ok(row) => {
            match handoff {
                Some(slot) => {
                    // The row as the statement wrote it: the new ticket's id in its data.
                    let mut payload = payload;
                    payload["data"]["ticket_id"] = row.id.into();
                    slot.send(envelope.id, &envelope.event_type, payload, headers);
                }
                None => state.relay.wake(),
            }
            Ok(created_view(row, stored.as_ref()))
        }
        Err(e) => {
            unstore(state, stored).await;
            Err(e)
        }
    }
}

/// The new ticket's view, as [`detail`] would read it back: its one message (and attachment).
fn created_view(row: tq::CreatedTicket, stored: Option<&Stored<'_>>) -> TicketView {
    let message = TicketMessage {
        id: row.message_id,
        ticket_id: row.id,
        author_id: row.user_id,
        is_staff: false,
        body: row.description.clone(),
        created_at: row.message_created_at,
    };
    let attachments = match (stored, row.attachment_id, row.attachment_created_at) {
        (Some(s), Some(id), Some(created_at)) => vec![TicketAttachment {
            id,
            message_id: row.message_id,
            filename: s.upload.filename.clone(),
            content_type: s.upload.kind.content_type().to_owned(),
            size: i64::try_from(s.upload.bytes.len()).unwrap_or(i64::MAX),
            storage_key: s.key.clone(),
            created_at,
        }],
        _ => Vec::new(),
    };
    let author = row.author_name;
    let ticket = Ticket {
        id: row.id,
        user_id: row.user_id,
        title: row.title,
        description: row.description,
        status: row.status,
        priority: row.priority,
        importance: row.importance,
        category: row.category,
        user_automation_id: row.user_automation_id,
        assigned_to: row.assigned_to,
        created_at: row.created_at,
        updated_at: row.updated_at,
        closed_at: row.closed_at,
    };
    TicketView::detail(
        ticket,
        vec![(message, author)],
        attachments,
        1,
        0,
        DEFAULT_PAGE.limit,
    )
}

async fn attach(
    conn: &mut AsyncPgConnection,
    message_id: i64,
    s: &Stored<'_>,
) -> Result<TicketAttachment, ApiError> {
    let size = i64::try_from(s.upload.bytes.len()).map_err(ApiError::internal)?;
    Ok(tq::insert_attachment(
        conn,
        &NewTicketAttachment {
            message_id,
            filename: &s.upload.filename,
            content_type: s.upload.kind.content_type(),
            size,
            storage_key: &s.key,
        },
    )
    .await?)
}

/// Inside the caller's transaction, on a locked ticket: the message, its attachment, the
/// `ticket.replied` event and the notification of the other side. Returns the message and
/// the status the ticket moves to.
async fn write_message(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    ticket: &Ticket,
    text: &str,
    stored: Option<&Stored<'_>>,
) -> Result<(TicketMessage, Option<TicketAttachment>, &'static str), ApiError> {
    let side = actor.side(ticket);
    let next = status::after_message(&ticket.status, side).map_err(transition_error)?;
    check_thread_room(conn, ticket.id, text).await?;
    let by_staff = side == Side::Staff;
    let message = tq::insert_message(
        conn,
        &NewTicketMessage {
            ticket_id: ticket.id,
            author_id: actor.id,
            is_staff: by_staff,
            body: text,
        },
    )
    .await?;
    let attachment = match stored {
        Some(s) => Some(attach(conn, message.id, s).await?),
        None => None,
    };
    let event_id = zimmer_events::enqueue_event(
        conn,
        PRODUCER,
        &TicketReplied {
            ticket_id: ticket.id,
            user_id: ticket.user_id,
            by_staff,
            message_id: message.id,
            author_id: actor.id,
        },
    )
    .await?;
    // Notified here, with the event's id as the source: it shows at commit, whether or not
    // the broker is up, and the consumer of this same event then finds it done.
    if by_staff {
        let draft = texts::staff_replied(ticket.id, &ticket.title);
        notifications::notify_user(conn, ticket.user_id, &draft, Some(event_id)).await?;
    } else if let Some(assignee) = ticket.assigned_to.filter(|a| *a != actor.id) {
        let draft = texts::customer_replied(ticket.id, &ticket.title);
        notifications::notify_user(conn, assignee, &draft, Some(event_id)).await?;
    }
    Ok((message, attachment, next))
}

/// Ticket `id` locked for a change, when `actor` may see it; 404 otherwise.
async fn locked_for(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: i64,
) -> Result<Ticket, ApiError> {
    tq::ticket_for_update(conn, id)
        .await?
        .filter(|t| actor.can_see(t))
        .ok_or_else(not_found)
}

/// Whether `actor` may see ticket `id` (before storing a file for it).
async fn precheck(state: &AppState, actor: Actor, id: i64) -> Result<(), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    match tq::ticket_by_id(&mut conn, id).await? {
        Some(t) if actor.can_see(&t) => {
            if t.status == status::CLOSED {
                Err(closed())
            } else {
                Ok(())
            }
        }
        _ => Err(not_found()),
    }
}

/// Adds a message (and attachment) to a ticket.
pub async fn add_message(
    state: &AppState,
    actor: Actor,
    ticket_id: i64,
    text: String,
    upload: Option<Upload>,
) -> Result<MessageView, ApiError> {
    if upload.is_some() {
        // Nothing is stored for a ticket the caller cannot write to.
        precheck(state, actor, ticket_id).await?;
    }
    let stored = store(state, upload.as_ref()).await?;
    let result = async {
        let mut conn = state.platform.pool.get().await?;
        conn.transaction(async |conn| {
            let ticket = locked_for(conn, actor, ticket_id).await?;
            let (message, attachment, next) =
                write_message(conn, actor, &ticket, &text, stored.as_ref()).await?;
            tq::update_ticket(
                conn,
                ticket.id,
                &tq::TicketChanges {
                    status: (next != ticket.status).then_some(next),
                    ..Default::default()
                },
            )
            .await?;
            let author = tq::user_name(conn, actor.id).await?.unwrap_or_default();
            Ok::<_, ApiError>(MessageView::new(message, author, attachment))
        })
        .await
    }
    .await;
    if result.is_err() {
        unstore(state, stored).await;
    }
    result
}

/// A change to a ticket: fields for staff (the owner may only close), and/or a message.
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub importance: Option<String>,
    /// `Some(None)` unassigns.
    pub assigned_to: Option<Option<i64>>,
    pub message: Option<String>,
}

impl TicketUpdate {
    fn changes_fields(&self) -> bool {
        self.status.is_some()
            || self.priority.is_some()
            || self.importance.is_some()
            || self.assigned_to.is_some()
    }
}

/// Hides a ticket for everyone (docs/panels.md "Ticket delete"); the caller checked the
/// manager role. One statement: a second delete of the same ticket finds nothing (404).
pub async fn delete_ticket(
    state: &AppState,
    actor_id: i64,
    ticket_id: i64,
) -> Result<(), ApiError> {
    let mut conn = state.platform.pool.get().await?;
    if !tq::mark_deleted(&mut conn, ticket_id).await? {
        return Err(not_found());
    }
    tracing::info!(ticket_id, actor_id, "ticket deleted");
    Ok(())
}

/// Applies a [`TicketUpdate`] in one transaction; answers the ticket as it is afterwards.
pub async fn update_ticket(
    state: &AppState,
    actor: Actor,
    ticket_id: i64,
    update: TicketUpdate,
) -> Result<TicketView, ApiError> {
    let mut conn = state.platform.pool.get().await?;
    conn.transaction(async |conn| {
        let ticket = locked_for(conn, actor, ticket_id).await?;
        let side = actor.side(&ticket);
        if side == Side::Customer
            && (update.priority.is_some()
                || update.importance.is_some()
                || update.assigned_to.is_some())
        {
            return Err(ApiError::forbidden(
                "You can only close your ticket or add a message to it",
            ));
        }
        if ticket.status == status::CLOSED && (update.changes_fields() || update.message.is_some())
        {
            // Closing a closed ticket again is a harmless repeat.
            let only_reclose = update.message.is_none()
                && update.status.as_deref() == Some(status::CLOSED)
                && update.priority.is_none()
                && update.importance.is_none()
                && update.assigned_to.is_none();
            if only_reclose {
                return detail(conn, ticket).await;
            }
            return Err(closed());
        }
        let mut current_status = ticket.status.clone();
        if let Some(text) = &update.message {
            let (_, _, next) = write_message(conn, actor, &ticket, text, None).await?;
            current_status = next.to_owned();
        }
        let mut changes = tq::TicketChanges::default();
        // A message moves the status by itself (e.g. reopens a resolved ticket); an explicit
        // status is checked against the rules.
        let target = match update.status.as_deref() {
            Some(explicit) => {
                status::check_transition(&ticket.status, explicit, side)
                    .map_err(transition_error)?;
                explicit
            }
            None => current_status.as_str(),
        };
        if target != ticket.status {
            changes.status = Some(target);
            if target == status::CLOSED {
                changes.closed_at = Some(Some(Utc::now()));
            }
        }
        changes.priority = update.priority.as_deref();
        changes.importance = update.importance.as_deref();
        let mut newly_assigned = None;
        if let Some(assignee) = update.assigned_to {
            if let Some(id) = assignee {
                let role = tq::user_role(conn, id).await?;
                let ok = matches!(&role, Some((r, true)) if is_ticket_staff_role(r));
                if !ok {
                    return Err(ApiError::invalid(
                        "assigned_to",
                        "must be an active support staff member or manager",
                    ));
                }
                if ticket.assigned_to != Some(id) && id != actor.id {
                    newly_assigned = Some(id);
                }
            }
            changes.assigned_to = Some(assignee);
        }
        let updated = tq::update_ticket(conn, ticket.id, &changes).await?;
        if side == Side::Staff
            && updated.status != ticket.status
            && let Some(draft) = texts::ticket_status(updated.id, &updated.title, &updated.status)
        {
            notifications::notify_user(conn, updated.user_id, &draft, None).await?;
        }
        if let Some(assignee) = newly_assigned {
            let draft = texts::ticket_assigned(updated.id, &updated.title);
            notifications::notify_user(conn, assignee, &draft, None).await?;
        }
        detail(conn, updated).await
    })
    .await
}
