//! What clients see: the shapes of clients.md (the panel's reads) plus api.md's fields.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zimmer_db::models::support::{Notification, Ticket, TicketAttachment, TicketMessage};

/// `{id, type, title, body, data, is_read, created_at, read_at}` (clients.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotificationView {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub is_read: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// Not shown to clients; lets the live stream route it.
    #[serde(skip_serializing, default)]
    pub user_id: i64,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            title: n.title,
            body: n.body,
            data: n.data,
            is_read: n.read_at.is_some(),
            created_at: n.created_at,
            read_at: n.read_at,
            user_id: n.user_id,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Where to download it (owner or staff, with the same Bearer token).
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: i64,
    pub author_name: String,
    pub is_staff: bool,
    /// Named `message` as in the request that wrote it; `body` too, as in the data model.
    pub message: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub attachment: Option<AttachmentView>,
}

impl MessageView {
    pub fn new(
        m: TicketMessage,
        author_name: String,
        attachment: Option<TicketAttachment>,
    ) -> Self {
        let attachment = attachment.map(|a| AttachmentView {
            url: format!("/api/tickets/{}/messages/{}/attachment", m.ticket_id, m.id),
            id: a.id,
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
        });
        Self {
            id: m.id,
            ticket_id: m.ticket_id,
            author_id: m.author_id,
            author_name,
            is_staff: m.is_staff,
            message: m.body.clone(),
            body: m.body,
            created_at: m.created_at,
            attachment,
        }
    }
}

/// A ticket as the panel lists it (`message` = the whole conversation as one string), with
/// api.md's fields; `messages` only where one ticket is shown.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub importance: String,
    pub priority: String,
    pub category: Option<String>,
    pub user_id: i64,
    pub user_automation_id: Option<i64>,
    pub assigned_to: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageView>>,
}

/// The panel's thread string (clients.md): the first message, then each later one as
/// `"\n\n--- Reply from <author name> ---\n" + text`.
pub fn flatten_thread(ticket: &Ticket, messages: &[(TicketMessage, String)]) -> String {
    let mut iter = messages.iter();
    let mut out = match iter.next() {
        Some((first, _)) => first.body.clone(),
        None => ticket.description.clone(),
    };
    for (m, author) in iter {
        out.push_str("\n\n--- Reply from ");
        out.push_str(author);
        out.push_str(" ---\n");
        out.push_str(&m.body);
    }
    out
}

impl TicketView {
    pub fn new(t: Ticket, message: String, messages: Option<Vec<MessageView>>) -> Self {
        Self {
            id: t.id,
            subject: t.title,
            status: t.status,
            importance: t.importance,
            priority: t.priority,
            category: t.category,
            user_id: t.user_id,
            user_automation_id: t.user_automation_id,
            assigned_to: t.assigned_to,
            created_at: t.created_at,
            updated_at: t.updated_at,
            closed_at: t.closed_at,
            message,
            messages,
        }
    }

    /// List items: each ticket with its flattened thread (`messages` in conversation order,
    /// any tickets mixed).
    pub fn list(tickets: Vec<Ticket>, messages: Vec<(TicketMessage, String)>) -> Vec<Self> {
        let mut by_ticket: HashMap<i64, Vec<(TicketMessage, String)>> = HashMap::new();
        for (m, name) in messages {
            by_ticket.entry(m.ticket_id).or_default().push((m, name));
        }
        tickets
            .into_iter()
            .map(|t| {
                let thread = flatten_thread(&t, by_ticket.get(&t.id).map_or(&[], Vec::as_slice));
                Self::new(t, thread, None)
            })
            .collect()
    }

    /// One ticket with its messages and their attachments.
    pub fn detail(
        ticket: Ticket,
        messages: Vec<(TicketMessage, String)>,
        attachments: Vec<TicketAttachment>,
    ) -> Self {
        let thread = flatten_thread(&ticket, &messages);
        let mut by_message: HashMap<i64, TicketAttachment> = HashMap::new();
        for a in attachments {
            by_message.entry(a.message_id).or_insert(a);
        }
        let views = messages
            .into_iter()
            .map(|(m, name)| {
                let a = by_message.remove(&m.id);
                MessageView::new(m, name, a)
            })
            .collect();
        Self::new(ticket, thread, Some(views))
    }
}
