//! Notifications' SQL, and the live signal (`pg_notify`, delivered at commit and never on
//! rollback) that `ops::notifications` sends beside every insert.

use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{BoxedSqlQuery, SqlQuery},
    sql_types::{Array, Jsonb, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zimmer_db::{
    models::support::{NewNotification, Notification},
    schema::{notifications, users},
};

use crate::domain::{signal, texts::Draft, views::NotificationView};

async fn notify(conn: &mut AsyncPgConnection, payload: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(signal::CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await
        .map(drop)
}

fn encoded(payload: serde_json::Result<String>) -> QueryResult<String> {
    payload.map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// Inside the inserting transaction: this notification goes live at commit.
pub async fn signal_one(conn: &mut AsyncPgConnection, view: &NotificationView) -> QueryResult<()> {
    notify(conn, &encoded(signal::one(view))?).await
}

/// Inside the inserting transaction: the notifications of this event go live at commit.
pub async fn signal_event(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<()> {
    notify(conn, &encoded(signal::event(event_id))?).await
}

/// Whether user `user_id` exists (a notification for an unknown user is skipped).
pub async fn user_exists(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<bool> {
    let exists: Option<i64> = users::table
        .find(user_id)
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    Ok(exists.is_some())
}

/// Inserts one notification; `None` when that event already notified that user (the unique
/// `(user_id, source_event_id)`).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    draft: &Draft,
    source_event_id: Option<Uuid>,
) -> QueryResult<Option<Notification>> {
    diesel::insert_into(notifications::table)
        .values(NewNotification {
            user_id,
            kind: draft.kind,
            title: &draft.title,
            body: &draft.body,
            data: &draft.data,
            source_event_id,
        })
        .on_conflict((notifications::user_id, notifications::source_event_id))
        .do_nothing()
        .returning(Notification::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The one-statement fan-out: one notification per active user whose `column` is among the
/// caller's `$6`, skipping a user `source_event_id` already notified.
fn insert_for_active_users<'a>(
    column: &str,
    draft: &'a Draft,
    source_event_id: Uuid,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    diesel::sql_query(format!(
        "INSERT INTO notifications (user_id, kind, title, body, data, source_event_id) \
         SELECT id, $1, $2, $3, $4, $5 FROM users WHERE is_active AND {column} = ANY($6) \
         ON CONFLICT (user_id, source_event_id) DO NOTHING"
    ))
    .into_boxed()
    .bind::<Text, _>(draft.kind)
    .bind::<Text, _>(&draft.title)
    .bind::<Text, _>(&draft.body)
    .bind::<Jsonb, _>(&draft.data)
    .bind::<SqlUuid, _>(source_event_id)
}

/// One notification per active user whose role is in `roles`, in one statement; a re-run of
/// the same event adds nothing. Returns how many were created.
pub async fn insert_for_roles(
    conn: &mut AsyncPgConnection,
    roles: &[&str],
    draft: &Draft,
    source_event_id: Uuid,
) -> QueryResult<usize> {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    insert_for_active_users("role", draft, source_event_id)
        .bind::<Array<Text>, _>(roles)
        .execute(conn)
        .await
}

/// One notification per distinct id of an existing, active account among `user_ids` (others
/// skipped), in one statement; `batch` is the `source_event_id` of all of them, so an id given
/// twice gets one. Returns how many were created.
pub async fn insert_for_users(
    conn: &mut AsyncPgConnection,
    user_ids: &[i64],
    draft: &Draft,
    batch: Uuid,
) -> QueryResult<usize> {
    insert_for_active_users("id", draft, batch)
        .bind::<Array<diesel::sql_types::BigInt>, _>(user_ids)
        .execute(conn)
        .await
}

pub async fn event_already_notified(
    conn: &mut AsyncPgConnection,
    source_event_id: Uuid,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        notifications::table.filter(notifications::source_event_id.eq(source_event_id)),
    ))
    .get_result(conn)
    .await
}

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// Empty = every kind.
    pub kinds: Vec<String>,
    /// `Some(false)` = unread only.
    pub read: Option<bool>,
}

fn filtered(user_id: i64, f: &NotificationFilter) -> notifications::BoxedQuery<'static, Pg> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .into_boxed();
    if !f.kinds.is_empty() {
        q = q.filter(notifications::kind.eq_any(f.kinds.clone()));
    }
    match f.read {
        Some(true) => q = q.filter(notifications::read_at.is_not_null()),
        Some(false) => q = q.filter(notifications::read_at.is_null()),
        None => {}
    }
    q
}

/// Newest first, with the total.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    filter: &NotificationFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Notification>, i64)> {
    let rows = filtered(user_id, filter)
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .select(Notification::as_select());
    let count = filtered(user_id, filter).count();
    zimmer_db::paged(conn, count, rows, offset, limit).await
}

pub async fn unread_count(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// Marks the user's own notifications among `ids` read (others' ids are ignored); the first
/// read time is kept. Returns how many changed.
pub async fn mark_read(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    ids: &[i64],
) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::id.eq_any(ids))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

pub async fn mark_all_read(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

pub async fn owned_exists(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        notifications::table
            .filter(notifications::id.eq(id))
            .filter(notifications::user_id.eq(user_id)),
    ))
    .get_result(conn)
    .await
}

pub async fn delete(conn: &mut AsyncPgConnection, user_id: i64, id: i64) -> QueryResult<usize> {
    diesel::delete(
        notifications::table
            .filter(notifications::id.eq(id))
            .filter(notifications::user_id.eq(user_id)),
    )
    .execute(conn)
    .await
}

pub async fn by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Notification>> {
    notifications::table
        .find(id)
        .select(Notification::as_select())
        .first(conn)
        .await
        .optional()
}

/// Oldest first: what a reconnecting stream missed after `after_id`.
pub async fn since(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::id.gt(after_id))
        .order(notifications::id.asc())
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)
        .await
}

/// The newest id of a user, where a fresh stream starts counting.
pub async fn latest_id(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .select(diesel::dsl::max(notifications::id))
        .first::<Option<i64>>(conn)
        .await
        .map(Option::unwrap_or_default)
}

/// The notifications one event created for some users (bulk signals).
pub async fn of_event_for(
    conn: &mut AsyncPgConnection,
    source_event_id: Uuid,
    user_ids: &[i64],
) -> QueryResult<Vec<Notification>> {
    notifications::table
        .filter(notifications::source_event_id.eq(source_event_id))
        .filter(notifications::user_id.eq_any(user_ids))
        .select(Notification::as_select())
        .load(conn)
        .await
}
