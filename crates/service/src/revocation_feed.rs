//! Keeps every instance's revocation set current: a broadcast subscription to
//! `session.revoked` and `user.deactivated` (each instance gets its own copy), plus a load of
//! the revocations still live from auth's internal API at start (so an instance that starts
//! after a logout still rejects that session's tokens) and periodically after (so one that
//! lost the broker for a while catches up).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zimmer_config::Settings;
use zimmer_events::{Broker, ConsumerHandle, Envelope};
use zimmer_jwt::Revocations;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedSession {
    pub session_id: Uuid,
    #[serde(default)]
    pub user_id: Option<i64>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedUser {
    pub user_id: i64,
    pub deactivated_at: DateTime<Utc>,
}

/// What `GET /internal/revocations` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevocationList {
    pub sessions: Vec<RevokedSession>,
    pub users: Vec<RevokedUser>,
}

impl RevocationList {
    pub fn apply(&self, revocations: &Revocations) {
        for s in &self.sessions {
            revocations.revoke_session(s.session_id, s.expires_at.timestamp());
        }
        for u in &self.users {
            revocations.deactivate_user(u.user_id, u.deactivated_at.timestamp());
        }
    }
}

/// Applies one `session.revoked` / `user.deactivated` / `user.updated` event.
pub fn apply_revocation_event(revocations: &Revocations, event: &Envelope) {
    match event.event_type.as_str() {
        "session.revoked" => match event.data_as::<RevokedSession>() {
            Ok(s) => revocations.revoke_session(s.session_id, s.expires_at.timestamp()),
            Err(e) => tracing::warn!(error = %e, "malformed session.revoked"),
        },
        "user.deactivated" => {
            #[derive(Deserialize)]
            struct Data {
                user_id: i64,
                #[serde(default)]
                deactivated_at: Option<DateTime<Utc>>,
            }
            match event.data_as::<Data>() {
                Ok(d) => revocations.deactivate_user(
                    d.user_id,
                    d.deactivated_at.unwrap_or(event.occurred_at).timestamp(),
                ),
                Err(e) => tracing::warn!(error = %e, "malformed user.deactivated"),
            }
        }
        _ => {}
    }
}

pub(crate) fn start(
    settings: &Settings,
    broker: &Broker,
    revocations: &Revocations,
) -> ConsumerHandle {
    let feed_revocations = revocations.clone();
    let handle = zimmer_events::spawn_broadcast_listener(
        broker.clone(),
        vec!["session.revoked".to_owned(), "user.deactivated".to_owned()],
        move |event| apply_revocation_event(&feed_revocations, &event),
    );

    // Subscribed first, then loaded: nothing revoked in between can be missed. Then loaded
    // again every `REVOCATION_RESYNC_SECS` (60 s): the broadcast subscription misses what is
    // published while this instance is cut off from the broker, and the resync closes that
    // gap within a minute of the broker (or auth) coming back. Entries only ever get added
    // (each keeps the later expiry), so a resync never undoes an event.
    if settings.service != "auth" {
        let url = format!(
            "{}/internal/revocations",
            settings.auth_internal_url.trim_end_matches('/')
        );
        let token = settings.internal_token.clone();
        let revocations = revocations.clone();
        let resync = Duration::from_secs(
            settings
                .env
                .parse("REVOCATION_RESYNC_SECS", 60u64)
                .unwrap_or(60)
                .max(1),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut delay = Duration::from_millis(250);
            let mut loaded = false;
            loop {
                let result = async {
                    client
                        .get(&url)
                        .header("X-Internal-Token", token.expose())
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await?
                        .error_for_status()?
                        .json::<RevocationList>()
                        .await
                }
                .await;
                match result {
                    Ok(list) => {
                        list.apply(&revocations);
                        if loaded {
                            tracing::debug!(
                                sessions = list.sessions.len(),
                                users = list.users.len(),
                                "resynchronised live revocations from auth"
                            );
                        } else {
                            tracing::info!(
                                sessions = list.sessions.len(),
                                users = list.users.len(),
                                "loaded live revocations from auth"
                            );
                        }
                        loaded = true;
                        delay = Duration::from_millis(250);
                        tokio::time::sleep(resync).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, loaded, "could not load revocations from auth; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(resync.max(Duration::from_secs(15)));
                    }
                }
            }
        });
    }

    let purge = revocations.clone();
    let max_age = i64::try_from(settings.jwt.access_ttl.as_secs()).unwrap_or(3600);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::REVOCATION_PURGE_INTERVAL);
        loop {
            tick.tick().await;
            purge.purge_expired(max_age);
        }
    });
    handle
}
