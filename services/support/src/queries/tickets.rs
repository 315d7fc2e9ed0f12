//! Tickets, their messages and attachments.

use chrono::{DateTime, Utc};
use diesel::{
    dsl::{AsSelect, now},
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{BigInt, Double, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, methods::LoadQuery};
use futures_util::future::BoxFuture;
use uuid::Uuid;
use zimmer_db::{
    models::support::{
        NewTicket, NewTicketAttachment, NewTicketMessage, Ticket, TicketAttachment, TicketMessage,
    },
    schema::{ticket_attachments, ticket_messages, tickets, users},
};

/// A new ticket as [`create_ticket`] writes it: the ticket, the first message's attachment (if
/// any) and the `ticket.created` outbox row.
pub struct CreateTicket<'a> {
    pub ticket: &'a NewTicket<'a>,
    pub attachment: Option<NewAttachmentFile<'a>>,
    pub event_id: Uuid,
    pub producer: &'a str,
    pub event_type: &'a str,
    /// The envelope (`zimmer_events::outbox_json`); the statement writes the new ticket's id
    /// into its `data.ticket_id`.
    pub event_payload: &'a serde_json::Value,
    pub event_headers: &'a serde_json::Value,
    /// The row's lease when it is handed to the relay in memory (`HandoffSlot::lease_secs`);
    /// `None` writes it unleased, for the relay's poll.
    pub event_lease_secs: Option<f64>,
}

/// The attachment of a new ticket's first message (the message id comes from the statement).
pub struct NewAttachmentFile<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub storage_key: &'a str,
}

/// What [`create_ticket`] answers: the ticket's row, its first message's id and time, the
/// attachment's id and time when there is one, and the author's name.
#[derive(Debug, QueryableByName)]
pub struct CreatedTicket {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub priority: String,
    #[diesel(sql_type = Text)]
    pub importance: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub category: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_automation_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub assigned_to: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub closed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub message_id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub message_created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub attachment_id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub attachment_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Text)]
    pub author_name: String,
}

/// A new ticket in ONE statement (one round trip, one commit, atomic on its own): the ticket,
/// but only when its `user_automation_id` is absent or the customer's own; its first message;
/// that message's attachment row when a file was stored; and the `ticket.created` outbox row
/// carrying the new ticket's id. When the automation is not the customer's nothing is written
/// and no row comes back. The parameters come first, as the CTE `p` ([`CreateTicketQuery`]).
const CREATE_TICKET_SQL: &str = "
, t AS (
    INSERT INTO tickets (user_id, title, description, priority, importance, category,
                         user_automation_id)
    SELECT p.user_id, p.title, p.description, p.priority, p.importance, p.category,
           p.user_automation_id
    FROM p
    WHERE p.user_automation_id IS NULL
       OR EXISTS (SELECT 1 FROM user_automations ua
                  WHERE ua.id = p.user_automation_id AND ua.user_id = p.user_id)
    RETURNING id, user_id, title, description, status, priority, importance, category,
              user_automation_id, assigned_to, created_at, updated_at, closed_at
), m AS (
    INSERT INTO ticket_messages (ticket_id, author_id, is_staff, body)
    SELECT t.id, t.user_id, false, t.description FROM t
    RETURNING id, created_at
), a AS (
    INSERT INTO ticket_attachments (message_id, filename, content_type, size, storage_key)
    SELECT m.id, p.filename, p.content_type, p.size, p.storage_key
    FROM m CROSS JOIN p WHERE p.storage_key IS NOT NULL
    RETURNING id, created_at
), o AS (
    INSERT INTO outbox (id, producer, event_type, payload, headers, locked_until)
    SELECT p.event_id, p.producer, p.event_type,
           jsonb_set(p.payload, '{data,ticket_id}', to_jsonb(t.id)), p.headers,
           now() + make_interval(secs => p.lease_secs)
    FROM t CROSS JOIN p
)
SELECT t.*, m.id AS message_id, m.created_at AS message_created_at,
       a.id AS attachment_id, a.created_at AS attachment_created_at,
       COALESCE((SELECT u.name FROM users u JOIN p ON u.id = p.user_id), '') AS author_name
FROM t CROSS JOIN m LEFT JOIN a ON true";

/// [`CREATE_TICKET_SQL`] as a query type of its own rather than `sql_query` (which diesel
/// never caches): the connection keeps its prepared statement, so a ticket costs one
/// Bind/Execute instead of a Parse round trip and a fresh plan of the whole CTE each time.
struct CreateTicketQuery<'a> {
    c: &'a CreateTicket<'a>,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    size: Option<i64>,
    storage_key: Option<&'a str>,
}

/// The cache key of [`CreateTicketQuery`]'s prepared statement (its SQL never varies).
struct CreateTicketQueryId;

impl QueryId for CreateTicketQuery<'_> {
    type QueryId = CreateTicketQueryId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for CreateTicketQuery<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl QueryFragment<Pg> for CreateTicketQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let c = self.c;
        let t = c.ticket;
        out.push_sql("WITH p AS (SELECT ");
        out.push_bind_param::<BigInt, _>(&t.user_id)?;
        out.push_sql("::int8 AS user_id, ");
        out.push_bind_param::<Text, _>(&t.title)?;
        out.push_sql("::text AS title, ");
        out.push_bind_param::<Text, _>(&t.description)?;
        out.push_sql("::text AS description, ");
        out.push_bind_param::<Text, _>(&t.priority)?;
        out.push_sql("::text AS priority, ");
        out.push_bind_param::<Text, _>(&t.importance)?;
        out.push_sql("::text AS importance, ");
        out.push_bind_param::<Nullable<Text>, _>(&t.category)?;
        out.push_sql("::text AS category, ");
        out.push_bind_param::<Nullable<BigInt>, _>(&t.user_automation_id)?;
        out.push_sql("::int8 AS user_automation_id, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.filename)?;
        out.push_sql("::text AS filename, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.content_type)?;
        out.push_sql("::text AS content_type, ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.size)?;
        out.push_sql("::int8 AS size, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.storage_key)?;
        out.push_sql("::text AS storage_key, ");
        out.push_bind_param::<SqlUuid, _>(&c.event_id)?;
        out.push_sql("::uuid AS event_id, ");
        out.push_bind_param::<Text, _>(&c.producer)?;
        out.push_sql("::text AS producer, ");
        out.push_bind_param::<Text, _>(&c.event_type)?;
        out.push_sql("::text AS event_type, ");
        out.push_bind_param::<Jsonb, _>(c.event_payload)?;
        out.push_sql("::jsonb AS payload, ");
        out.push_bind_param::<Jsonb, _>(c.event_headers)?;
        out.push_sql("::jsonb AS headers, ");
        out.push_bind_param::<Nullable<Double>, _>(&c.event_lease_secs)?;
        out.push_sql("::float8 AS lease_secs)");
        out.push_sql(CREATE_TICKET_SQL);
        Ok(())
    }
}

pub async fn create_ticket(
    conn: &mut AsyncPgConnection,
    c: &CreateTicket<'_>,
) -> QueryResult<Option<CreatedTicket>> {
    let a = c.attachment.as_ref();
    CreateTicketQuery {
        c,
        filename: a.map(|a| a.filename),
        content_type: a.map(|a| a.content_type),
        size: a.map(|a| a.size),
        storage_key: a.map(|a| a.storage_key),
    }
    .get_result(conn)
    .await
    .optional()
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

/// The ticket `id` unless it is deleted: a deleted one is unknown to every route
/// (docs/panels.md "Ticket delete").
#[diesel::dsl::auto_type(no_type_alias)]
fn live_ticket(id: i64) -> _ {
    let row: AsSelect<Ticket, Pg> = Ticket::as_select();
    tickets::table
        .find(id)
        .filter(tickets::deleted_at.is_null())
        .select(row)
}

pub async fn ticket_by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Ticket>> {
    live_ticket(id).first(conn).await.optional()
}

/// The ticket row locked until the transaction ends: concurrent replies and status changes
/// on one ticket apply one after the other, each seeing the other's status.
pub async fn ticket_for_update(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<Ticket>> {
    live_ticket(id).for_update().first(conn).await.optional()
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
    let rows = filtered(filter)
        .order((tickets::created_at.desc(), tickets::id.desc()))
        .select(Ticket::as_select());
    zimmer_db::paged(conn, filtered(filter).count(), rows, offset, limit).await
}

/// The messages of some tickets in conversation order, with their authors' names.
pub async fn messages_of(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(TicketMessage, String)>> {
    let messages = with_authors(ticket_ids).order((
        ticket_messages::ticket_id,
        ticket_messages::created_at,
        ticket_messages::id,
    ));
    load_for_ids(conn, ticket_ids, messages).await
}

/// The messages of some tickets, each with its author's name.
#[diesel::dsl::auto_type(no_type_alias)]
fn with_authors<'a>(ticket_ids: &'a [i64]) -> _ {
    let row: (AsSelect<TicketMessage, Pg>, users::name) = (TicketMessage::as_select(), users::name);
    ticket_messages::table
        .inner_join(users::table)
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .select(row)
}

/// How many messages a ticket has and how many characters they hold together: what the
/// thread limits are checked against (under the ticket's row lock).
pub async fn thread_size(conn: &mut AsyncPgConnection, ticket_id: i64) -> QueryResult<(i64, i64)> {
    use diesel::dsl::sql;
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
    let counts = ticket_messages::table
        .filter(ticket_messages::ticket_id.eq_any(ticket_ids))
        .group_by(ticket_messages::ticket_id)
        .select((ticket_messages::ticket_id, diesel::dsl::count_star()));
    load_for_ids(conn, ticket_ids, counts).await
}

/// The last message of each of some tickets, with its author's name (one row per ticket,
/// found through the `(ticket_id, created_at)` index).
pub async fn last_messages(
    conn: &mut AsyncPgConnection,
    ticket_ids: &[i64],
) -> QueryResult<Vec<(TicketMessage, String)>> {
    let last = with_authors(ticket_ids)
        .distinct_on(ticket_messages::ticket_id)
        .order((
            ticket_messages::ticket_id,
            ticket_messages::created_at.desc(),
            ticket_messages::id.desc(),
        ));
    load_for_ids(conn, ticket_ids, last).await
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
    let attachments = ticket_attachments::table
        .filter(ticket_attachments::message_id.eq_any(message_ids))
        .order(ticket_attachments::id)
        .select(TicketAttachment::as_select());
    load_for_ids(conn, message_ids, attachments).await
}

/// The rows `query` loads for a batch of ids: none, without a round trip, when the batch is
/// empty (a page without tickets, messages without attachments). Boxed so that callers
/// inside a transaction's closure need no proof about the query's borrows to stay `Send`.
fn load_for_ids<'a, T: Send + 'static>(
    conn: &'a mut AsyncPgConnection,
    ids: &[i64],
    query: impl LoadQuery<'a, AsyncPgConnection, T> + Send + 'a,
) -> BoxFuture<'a, QueryResult<Vec<T>>> {
    if ids.is_empty() {
        return Box::pin(std::future::ready(Ok(Vec::new())));
    }
    Box::pin(query.load(conn))
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
