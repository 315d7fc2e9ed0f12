//! Tickets of every customer (support's tables, read only; changes go through support).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    models::support::Ticket,
    schema::{ticket_attachments, ticket_messages, tickets},
};

use super::{paged, with_counts};

#[derive(Debug, Default, Clone)]
pub struct TicketFilter {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assigned_to: Option<i64>,
    /// Only tickets nobody is assigned to.
    pub unassigned: bool,
    pub user_id: Option<i64>,
    pub search: Option<String>,
}

/// Deleted tickets are left out of every list, count and view (docs/panels.md "Ticket delete").
fn filtered(f: &TicketFilter) -> tickets::BoxedQuery<'static, Pg> {
    let search = f.search.as_deref().map(zimmer_db::contains_pattern);
    let q = tickets::table
        .filter(tickets::deleted_at.is_null())
        .into_boxed()
        .filter_some(f.status.clone(), |s| tickets::status.eq(s))
        .filter_some(f.priority.clone(), |p| tickets::priority.eq(p))
        .filter_some(f.assigned_to, |a| tickets::assigned_to.eq(a))
        .filter_some(f.user_id, |u| tickets::user_id.eq(u))
        .filter_some(search, |p| {
            tickets::title
                .ilike(p.clone())
                .or(tickets::description.ilike(p))
        });
    if f.unassigned {
        q.filter(tickets::assigned_to.is_null())
    } else {
        q
    }
}

/// Most recently active first, with each ticket's message count.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &TicketFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(Ticket, i64)>, i64)> {
    let rows = filtered(f)
        .select(Ticket::as_select())
        .order((tickets::updated_at.desc(), tickets::id.desc()));
    let (rows, total): (Vec<Ticket>, i64) =
        paged(conn, filtered(f).count(), rows, offset, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let counts: Vec<(i64, i64)> = if ids.is_empty() {
        Vec::new()
    } else {
        ticket_messages::table
            .filter(ticket_messages::ticket_id.eq_any(&ids))
            .group_by(ticket_messages::ticket_id)
            .select((ticket_messages::ticket_id, diesel::dsl::count_star()))
            .load(conn)
            .await?
    };
    Ok((with_counts(rows, &counts, |t| t.id), total))
}

pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Ticket>> {
    tickets::table
        .find(id)
        .filter(tickets::deleted_at.is_null())
        .select(Ticket::as_select())
        .first(conn)
        .await
        .optional()
}

#[derive(Debug, Clone, Queryable)]
pub struct MessageRow {
    pub id: i64,
    pub author_id: i64,
    pub is_staff: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable)]
pub struct AttachmentRow {
    pub id: i64,
    pub message_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

pub async fn thread(
    conn: &mut AsyncPgConnection,
    ticket_id: i64,
) -> QueryResult<(Vec<MessageRow>, Vec<AttachmentRow>)> {
    let messages: Vec<MessageRow> = ticket_messages::table
        .filter(ticket_messages::ticket_id.eq(ticket_id))
        .select((
            ticket_messages::id,
            ticket_messages::author_id,
            ticket_messages::is_staff,
            ticket_messages::body,
            ticket_messages::created_at,
        ))
        .order((ticket_messages::created_at, ticket_messages::id))
        .load(conn)
        .await?;
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let attachments = if ids.is_empty() {
        Vec::new()
    } else {
        ticket_attachments::table
            .filter(ticket_attachments::message_id.eq_any(&ids))
            .select((
                ticket_attachments::id,
                ticket_attachments::message_id,
                ticket_attachments::filename,
                ticket_attachments::content_type,
                ticket_attachments::size,
            ))
            .order(ticket_attachments::id)
            .load(conn)
            .await?
    };
    Ok((messages, attachments))
}

/// `(ticket_id, author_id, body)` of every message of these tickets, each thread in
/// conversation order: for the dashboard's one-string thread.
pub async fn threads(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(i64, i64, String)>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    ticket_messages::table
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .select((
            ticket_messages::ticket_id,
            ticket_messages::author_id,
            ticket_messages::body,
        ))
        .order((
            ticket_messages::ticket_id,
            ticket_messages::created_at,
            ticket_messages::id,
        ))
        .load(conn)
        .await
}
