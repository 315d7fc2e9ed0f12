//! Tickets, their messages and attachments.

use chrono::{DateTime, Utc};
use diesel::{dsl::now, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    models::support::{
        NewTicket, NewTicketAttachment, NewTicketMessage, Ticket, TicketAttachment, TicketMessage,
    },
    schema::{ticket_attachments, ticket_messages, tickets, user_automations, users},
};

pub async fn insert_ticket(
    conn: &mut AsyncPgConnection,
    new: &NewTicket<'_>,
) -> QueryResult<Ticket> {
    diesel::insert_into(tickets::table)
        .values(new)
        .returning(Ticket::as_returning())
        .get_result(conn)
        .await
}

pub async fn insert_message(
    conn: &mut AsyncPgConnection,
    new: &NewTicketMessage<'_>,
) -> QueryResult<TicketMessage> {
    diesel::insert_into(ticket_messages::table)
        .values(new)
        .returning(TicketMessage::as_returning())
        .get_result(conn)
        .await
}

pub async fn insert_attachment(
    conn: &mut AsyncPgConnection,
    new: &NewTicketAttachment<'_>,
) -> QueryResult<TicketAttachment> {
    diesel::insert_into(ticket_attachments::table)
        .values(new)
        .returning(TicketAttachment::as_returning())
        .get_result(conn)
        .await
}

/// A ticket that is not deleted: a deleted one is unknown to every route (docs/panels.md
/// "Ticket delete").
pub async fn ticket_by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Ticket>> {
    tickets::table
        .find(id)
        .filter(tickets::deleted_at.is_null())
        .select(Ticket::as_select())
        .first(conn)
        .await
        .optional()
}

/// The ticket row locked until the transaction ends: concurrent replies and status changes
/// on one ticket apply one after the other, each seeing the other's status.
pub async fn ticket_for_update(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<Ticket>> {
    tickets::table
        .find(id)
        .filter(tickets::deleted_at.is_null())
        .select(Ticket::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Who may be assigned tickets or act as staff: role and whether the account is active.
pub async fn user_role(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(String, bool)>> {
    users::table
        .find(id)
        .select((users::role, users::is_active))
        .first(conn)
        .await
        .optional()
}

pub async fn user_name(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    users::table
        .find(id)
        .select(users::name)
        .first(conn)
        .await
        .optional()
}

/// Support reads marketplace's `user_automations` only to check that a ticket's
/// `user_automation_id` is the customer's own.
pub async fn owns_user_automation(
    conn: &mut AsyncPgConnection,
    user_automation_id: i64,
    user_id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        user_automations::table
            .filter(user_automations::id.eq(user_automation_id))
            .filter(user_automations::user_id.eq(user_id)),
    ))
    .get_result(conn)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    To(i64),
    Nobody,
}

/// Filters of the ticket list. `owner` is set for callers who see only their own tickets.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub owner: Option<i64>,
    pub user_id: Option<i64>,
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub assigned: Option<Assigned>,
}

fn filtered(f: &TicketFilter) -> tickets::BoxedQuery<'static, diesel::pg::Pg> {
    let mut q = tickets::table
        .filter(tickets::deleted_at.is_null())
        .into_boxed();
    if let Some(owner) = f.owner {
        q = q.filter(tickets::user_id.eq(owner));
    }
    if let Some(user_id) = f.user_id {
        q = q.filter(tickets::user_id.eq(user_id));
    }
    if !f.statuses.is_empty() {
        q = q.filter(tickets::status.eq_any(f.statuses.clone()));
    }
    if !f.priorities.is_empty() {
        q = q.filter(tickets::priority.eq_any(f.priorities.clone()));
    }
    match f.assigned {
        Some(Assigned::To(id)) => q = q.filter(tickets::assigned_to.eq(id)),
        Some(Assigned::Nobody) => q = q.filter(tickets::assigned_to.is_null()),
        None => {}
    }
    q
}

/// One page, newest first (`created_at` order uses the `(user_id, created_at)` and
/// `(status, created_at)` indexes), and the total.
pub async fn list_tickets(
    conn: &mut AsyncPgConnection,
    filter: &TicketFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Ticket>, i64)> {
    let total: i64 = filtered(filter).count().get_result(conn).await?;
    let items = filtered(filter)
        .order((tickets::created_at.desc(), tickets::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Ticket::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

/// The messages of some tickets in conversation order, with their authors' names.
pub async fn messages_of(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(TicketMessage, String)>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    ticket_messages::table
        .inner_join(users::table)
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .order((
            ticket_messages::ticket_id,
            ticket_messages::created_at,
            ticket_messages::id,
        ))
        .select((TicketMessage::as_select(), users::name))
        .load(conn)
        .await
}

/// How many messages a ticket has and how many characters they hold together: what the
/// thread limits are checked against (under the ticket's row lock).
pub async fn thread_size(conn: &mut AsyncPgConnection, ticket_id: i64) -> QueryResult<(i64, i64)> {
    use diesel::{dsl::sql, sql_types::BigInt};
    ticket_messages::table
        .filter(ticket_messages::ticket_id.eq(ticket_id))
        .select(sql::<(BigInt, BigInt)>(
            "count(*), COALESCE(SUM(char_length(body)), 0)::int8",
        ))
        .get_result(conn)
        .await
}

/// The message count of each of some tickets (tickets without messages are absent).
pub async fn message_counts(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    ticket_messages::table
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .group_by(ticket_messages::ticket_id)
        .select((ticket_messages::ticket_id, diesel::dsl::count_star()))
        .load(conn)
        .await
}

/// The last message of each of some tickets, with its author's name (one row per ticket,
/// found through the `(ticket_id, created_at)` index).
pub async fn last_messages(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(TicketMessage, String)>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    ticket_messages::table
        .inner_join(users::table)
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .distinct_on(ticket_messages::ticket_id)
        .order((
            ticket_messages::ticket_id,
            ticket_messages::created_at.desc(),
            ticket_messages::id.desc(),
        ))
        .select((TicketMessage::as_select(), users::name))
        .load(conn)
        .await
}

/// One page of a ticket's messages in conversation order, with their authors' names.
pub async fn messages_page(
    conn: &mut AsyncPgConnection,
    ticket_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(TicketMessage, String)>> {
    ticket_messages::table
        .inner_join(users::table)
        .filter(ticket_messages::ticket_id.eq(ticket_id))
        .order((ticket_messages::created_at, ticket_messages::id))
        .limit(limit)
        .offset(offset)
        .select((TicketMessage::as_select(), users::name))
        .load(conn)
        .await
}

pub async fn attachments_of(
    conn: &mut AsyncPgConnection,
    message_ids: &[i64],
) -> QueryResult<Vec<TicketAttachment>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    ticket_attachments::table
        .filter(ticket_attachments::message_id.eq_any(message_ids))
        .order(ticket_attachments::id)
        .select(TicketAttachment::as_select())
        .load(conn)
        .await
}

/// The attachment of a message, only if that message belongs to that ticket.
pub async fn attachment_of(
    conn: &mut AsyncPgConnection,
    ticket_id: i64,
    message_id: i64,
) -> QueryResult<Option<TicketAttachment>> {
    ticket_attachments::table
        .inner_join(ticket_messages::table)
        .filter(ticket_messages::id.eq(message_id))
        .filter(ticket_messages::ticket_id.eq(ticket_id))
        .order(ticket_attachments::id)
        .select(TicketAttachment::as_select())
        .first(conn)
        .await
        .optional()
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tickets)]
pub struct TicketChanges<'a> {
    pub status: Option<&'a str>,
    pub priority: Option<&'a str>,
    pub importance: Option<&'a str>,
    /// `Some(None)` unassigns.
    pub assigned_to: Option<Option<i64>>,
    pub closed_at: Option<Option<DateTime<Utc>>>,
}

pub async fn update_ticket(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &TicketChanges<'_>,
) -> QueryResult<Ticket> {
    diesel::update(tickets::table.find(id))
        .set((changes, tickets::updated_at.eq(now)))
        .returning(Ticket::as_returning())
        .get_result(conn)
        .await
}

/// Hides a ticket (its messages and attachments stay); `false` when it is unknown or already
/// deleted.
pub async fn mark_deleted(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::update(
        tickets::table
            .find(id)
            .filter(tickets::deleted_at.is_null()),
    )
    .set((tickets::deleted_at.eq(now), tickets::updated_at.eq(now)))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
