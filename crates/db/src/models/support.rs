//! Rows of the support service's tables (schema.rs). Owned by that service: only it writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::schema::{notifications, ticket_attachments, ticket_messages, tickets};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tickets)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Ticket {
    pub id: i64,
    pub user_id: i64,
    /// The API's `subject`.
    pub title: String,
    /// The opening message as written.
    pub description: String,
    pub status: String,
    pub priority: String,
    pub importance: String,
    pub category: Option<String>,
    pub user_automation_id: Option<i64>,
    pub assigned_to: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tickets)]
pub struct NewTicket<'a> {
    pub user_id: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub priority: &'a str,
    pub importance: &'a str,
    pub category: Option<&'a str>,
    pub user_automation_id: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = ticket_messages)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct TicketMessage {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: i64,
    pub is_staff: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = ticket_messages)]
pub struct NewTicketMessage<'a> {
    pub ticket_id: i64,
    pub author_id: i64,
    pub is_staff: bool,
    pub body: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = ticket_attachments)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct TicketAttachment {
    pub id: i64,
    pub message_id: i64,
    /// The uploader's name: for display and `Content-Disposition` only, never a path.
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Server-generated, relative to the attachment directory.
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = ticket_attachments)]
pub struct NewTicketAttachment<'a> {
    pub message_id: i64,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub storage_key: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    /// The API's `type`: payment, ticket, automation, admin, system.
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The event that caused it; unique per user, so a redelivered event notifies once.
    pub source_event_id: Option<Uuid>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification<'a> {
    pub user_id: i64,
    pub kind: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a serde_json::Value,
    pub source_event_id: Option<Uuid>,
}
