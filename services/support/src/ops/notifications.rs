//! Notification inserts, inside the caller's transaction (a ticket change, or the consumer's
//! inbox transaction). Every insert also signals the live stream (`pg_notify`, delivered at
//! commit and never on rollback), so a notification reaches the SSE stream exactly when it is
//! visible.

use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;
use zimmer_db::models::support::Notification;

use crate::{
    domain::{texts::Draft, views::NotificationView},
    queries::notifications as nq,
};

/// A notification for one user, unless that event already notified them (the unique
/// `(user_id, source_event_id)` makes a redelivered event a no-op) or the user does not exist.
pub async fn notify_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    draft: &Draft,
    source_event_id: Option<Uuid>,
) -> QueryResult<Option<Notification>> {
    if !nq::user_exists(conn, user_id).await? {
        tracing::warn!(
            user_id,
            kind = draft.kind,
            "notification for an unknown user skipped"
        );
        return Ok(None);
    }
    let inserted = nq::insert(conn, user_id, draft, source_event_id).await?;
    if let Some(n) = &inserted {
        nq::signal_one(conn, &NotificationView::from(n.clone())).await?;
    }
    Ok(inserted)
}

/// One notification per active user whose role is in `roles`, in one statement; a re-run of
/// the same event adds nothing. Returns how many were created.
pub async fn notify_roles(
    conn: &mut AsyncPgConnection,
    roles: &[&str],
    draft: &Draft,
    source_event_id: Uuid,
) -> QueryResult<usize> {
    let created = nq::insert_for_roles(conn, roles, draft, source_event_id).await?;
    if created > 0 {
        nq::signal_event(conn, source_event_id).await?;
    }
    Ok(created)
}

/// Notifications to chosen users (docs/panels.md "Fallback log and notifications"): one per
/// distinct active account among `user_ids`, all under one fresh batch id that the live stream
/// is signalled with at commit. Returns how many were created.
pub async fn notify_users(
    conn: &mut AsyncPgConnection,
    user_ids: &[i64],
    draft: &Draft,
) -> QueryResult<usize> {
    let batch = Uuid::now_v7();
    conn.transaction(async |conn| {
        let created = nq::insert_for_users(conn, user_ids, draft, batch).await?;
        if created > 0 {
            nq::signal_event(conn, batch).await?;
        }
        Ok(created)
    })
    .await
}
