//! Keeps every instance's revocation set current: a broadcast subscription to
//! `session.revoked` and `user.deactivated` (each instance gets its own copy), plus a load of
//! the revocations still live from auth's internal API at start, so an instance that starts
//! after a logout still rejects that session's tokens.

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

    // Subscribed first, then loaded: nothing revoked in between can be missed.
    if settings.service != "auth" {
        let url = format!(
            "{}/internal/revocations",
            settings.auth_internal_url.trim_end_matches('/')
        );
        let token = settings.internal_token.clone();
        let revocations = revocations.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut delay = Duration::from_millis(250);
            for _ in 0..20 {
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
                        tracing::info!(
                            sessions = list.sessions.len(),
                            users = list.users.len(),
                            "loaded live revocations from auth"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not load revocations from auth yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(15));
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
