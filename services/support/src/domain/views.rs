//! What clients see: the shapes of docs/panels.md (the panel's reads) plus docs/api.md's fields.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zimmer_db::models::support::{Notification, Ticket, TicketAttachment, TicketMessage};

/// `{id, type, title, body, data, is_read, created_at, read_at}` (docs/panels.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
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

#[cfg(test)]
impl NotificationView {
    /// A plain unread notification `id` of `user_id`, for unit tests.
    pub(crate) fn sample(user_id: i64, id: i64) -> Self {
        Self {
            id,
            kind: "system".into(),
            title: "t".into(),
            body: "b".into(),
            data: serde_json::json!({}),
            is_read: false,
            created_at: Utc::now(),
            read_at: None,
            user_id,
        }
    }
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Where to download it (owner or staff, with the same Bearer token).
    pub url: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// The last message of a ticket, as lists show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastMessageView {
    pub id: i64,
    pub author_id: i64,
    pub author_name: String,
    pub is_staff: bool,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl LastMessageView {
    fn new(m: &TicketMessage, author_name: &str) -> Self {
        Self {
            id: m.id,
            author_id: m.author_id,
            author_name: author_name.to_owned(),
            is_staff: m.is_staff,
            message: m.body.clone(),
            created_at: m.created_at,
        }
    }
}

/// A ticket as the panel lists it (`message` = the whole conversation as one string), with
/// the API's fields; `messages` only where one ticket is shown (one page of them).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// All messages of the ticket (also where only some are shown).
    pub message_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<LastMessageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageView>>,
    /// Where one ticket is shown: the position of `messages[0]` in the conversation and the
    /// page size (earlier messages exist when the offset is above 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_limit: Option<i64>,
}

/// Which messages of one ticket to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePage {
    pub limit: i64,
    /// `None`: the last page (a conversation opens at its end).
    pub offset: Option<i64>,
}

impl MessagePage {
    /// The offset this page starts at in a thread of `count` messages.
    pub fn start(&self, count: i64) -> i64 {
        self.offset
            .unwrap_or_else(|| (count - self.limit).max(0))
            .max(0)
    }
}

/// The panel's thread string (docs/panels.md): the first message, then each later one as
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
    pub fn new(
        t: Ticket,
        message: String,
        message_count: i64,
        messages: Option<Vec<MessageView>>,
    ) -> Self {
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
            message_count,
            last_message: None,
            messages,
            messages_offset: None,
            messages_limit: None,
        }
    }

    /// List items: each ticket with its flattened thread (`messages` in conversation order,
    /// any tickets mixed), its count and last message.
    pub fn list(tickets: Vec<Ticket>, messages: Vec<(TicketMessage, String)>) -> Vec<Self> {
        let mut by_ticket: HashMap<i64, Vec<(TicketMessage, String)>> = HashMap::new();
        for (m, name) in messages {
            by_ticket.entry(m.ticket_id).or_default().push((m, name));
        }
        tickets
            .into_iter()
            .map(|t| {
                let thread = by_ticket.get(&t.id).map_or(&[][..], Vec::as_slice);
                let flat = flatten_thread(&t, thread);
                let count = i64::try_from(thread.len()).unwrap_or(i64::MAX);
                let last = thread.last().map(|(m, n)| LastMessageView::new(m, n));
                let mut view = Self::new(t, flat, count, None);
                view.last_message = last;
                view
            })
            .collect()
    }

    /// Staff list items: each ticket with its last message (also as `message`, so the field
    /// keeps its type) and message count, never the whole thread.
    pub fn summaries(
        tickets: Vec<Ticket>,
        last: Vec<(TicketMessage, String)>,
        counts: Vec<(i64, i64)>,
    ) -> Vec<Self> {
        let mut last: HashMap<i64, (TicketMessage, String)> = last
            .into_iter()
            .map(|(m, n)| (m.ticket_id, (m, n)))
            .collect();
        let counts: HashMap<i64, i64> = counts.into_iter().collect();
        tickets
            .into_iter()
            .map(|t| {
                let count = counts.get(&t.id).copied().unwrap_or(0);
                let last = last.remove(&t.id);
                let text = last
                    .as_ref()
                    .map_or_else(|| t.description.clone(), |(m, _)| m.body.clone());
                let mut view = Self::new(t, text, count, None);
                view.last_message = last.map(|(m, n)| LastMessageView::new(&m, &n));
                view
            })
            .collect()
    }

    /// One ticket with one page of its messages and their attachments; `message` is that
    /// page's conversation as one string (the whole thread when it fits in one page).
    pub fn detail(
        ticket: Ticket,
        messages: Vec<(TicketMessage, String)>,
        attachments: Vec<TicketAttachment>,
        message_count: i64,
        offset: i64,
        limit: i64,
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
        let mut view = Self::new(ticket, thread, message_count, Some(views));
        view.messages_offset = Some(offset);
        view.messages_limit = Some(limit);
        view
    }
}
