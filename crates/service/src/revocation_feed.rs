//! Keeps every instance's revocation set current: a broadcast subscription to
//! `session.revoked` and `user.deactivated` (each instance gets its own copy), plus a load of
//! the revocations still live (from auth's internal API; auth itself reads its own database)
//! at start, so an instance that starts after a logout still rejects that session's tokens,
//! and periodically after, so one that lost the broker for a while catches up. Until the
//! first load the instance is not ready and refuses tokens with 503.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zimmer_config::Settings;
use zimmer_db::DbPool;
use zimmer_events::{
    Broker, ConsumerHandle, Envelope, Event,
    contracts::{SessionRevoked, UserDeactivated},
};
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

/// Applies one `session.revoked` / `user.deactivated` event. A broadcast listener has no
/// dead-letter queue: what it cannot read (malformed, or a version this build does not know)
/// is logged, and the periodic resync from auth covers it.
pub fn apply_revocation_event(revocations: &Revocations, event: &Envelope) {
    match event.event_type.as_str() {
        SessionRevoked::NAME => match event.decode::<SessionRevoked>() {
            Ok(s) => revocations.revoke_session(s.session_id, s.expires_at.timestamp()),
            Err(e) => tracing::warn!(error = %e, "unreadable session.revoked ignored"),
        },
        UserDeactivated::NAME => match event.decode::<UserDeactivated>() {
            Ok(d) => revocations.deactivate_user(
                d.user_id,
                d.deactivated_at.unwrap_or(event.occurred_at).timestamp(),
            ),
            Err(e) => tracing::warn!(error = %e, "unreadable user.deactivated ignored"),
        },
        _ => {}
    }
}

/// Where an instance loads the live revocations from: auth's internal API (every service but
/// auth), or, in auth, its own database.
/// It gets the instance's pool.
pub type RevocationLoader = Arc<
    dyn Fn(DbPool) -> Pin<Box<dyn Future<Output = anyhow::Result<RevocationList>> + Send>>
        + Send
        + Sync,
>;

/// The loader of every service but auth: `GET {AUTH_INTERNAL_URL}/internal/revocations`.
fn from_auth_api(settings: &Settings) -> RevocationLoader {
    let url = format!(
        "{}/internal/revocations",
        settings.auth_internal_url.trim_end_matches('/')
    );
    let token = settings.internal_token.clone();
    let client = reqwest::Client::new();
    Arc::new(move |_pool| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        Box::pin(async move {
            Ok(client
                .get(&url)
                .header("X-Internal-Token", token.expose())
                .timeout(Duration::from_secs(5))
                .send()
                .await?
                .error_for_status()?
                .json::<RevocationList>()
                .await?)
        })
    })
}

/// The first successful load: applied, and the set marked loaded (tokens are accepted from
/// now on).
fn first_load(list: &RevocationList, revocations: &Revocations, source: &str) {
    list.apply(revocations);
    revocations.mark_loaded();
    tracing::info!(
        source,
        sessions = list.sessions.len(),
        users = list.users.len(),
        "loaded live revocations"
    );
}

/// How long the first load may hold up start-up before it continues in the background.
const FIRST_LOAD_TIMEOUT: Duration = Duration::from_secs(3);

/// Subscribes to the revocation events, then loads the live revocations (once now, bounded in
/// time, then in the background until it succeeds, then every `REVOCATION_RESYNC_SECS`).
/// The set is marked loaded after the first successful load; until then the extractor answers
/// 503 and `/readyz` fails. `own` is auth's loader (its database); `None` means auth's API.
pub(crate) async fn start(
    settings: &Settings,
    pool: &DbPool,
    broker: &Broker,
    revocations: &Revocations,
    own: Option<RevocationLoader>,
) -> ConsumerHandle {
    let feed_revocations = revocations.clone();
    let handle = zimmer_events::spawn_broadcast_listener(
        broker.clone(),
        vec![
            SessionRevoked::NAME.to_owned(),
            UserDeactivated::NAME.to_owned(),
        ],
        move |event| apply_revocation_event(&feed_revocations, &event),
    );

    // Subscribed first, then loaded: nothing revoked in between can be missed. Then loaded
    // again every `REVOCATION_RESYNC_SECS` (60 s): the broadcast subscription misses what is
    // published while this instance is cut off from the broker, and the resync closes that
    // gap within a minute of the broker (or auth) coming back. Entries only ever get added
    // (each keeps the later expiry), so a resync never undoes an event. Auth does the same
    // from its own database: its in-memory set is empty after a restart, and a logged-out
    // token must stay rejected.
    let loader = own.unwrap_or_else(|| from_auth_api(settings));
    let source = if settings.service == "auth" {
        "database"
    } else {
        "auth"
    };
    let resync = Duration::from_secs(
        settings
            .env
            .parse("REVOCATION_RESYNC_SECS", 60u64)
            .unwrap_or(60)
            .max(1),
    );
    let first = match tokio::time::timeout(FIRST_LOAD_TIMEOUT, loader(pool.clone())).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("timed out")),
    };
    let loaded = match first {
        Ok(list) => {
            first_load(&list, revocations, source);
            true
        }
        Err(e) => {
            tracing::warn!(source, error = %e, "could not load revocations yet; retrying in the background");
            false
        }
    };
    let feed = revocations.clone();
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut loaded = loaded;
        // Short pauses while this instance cannot accept tokens; longer once it can.
        let first = Duration::from_millis(250);
        let mut before_load = zimmer_config::Backoff::new(first, Duration::from_secs(2));
        let mut after_load =
            zimmer_config::Backoff::new(first, resync.max(Duration::from_secs(15)));
        let mut wait = if loaded { resync } else { first };
        loop {
            tokio::time::sleep(wait).await;
            match loader(pool.clone()).await {
                Ok(list) => {
                    if loaded {
                        list.apply(&feed);
                        tracing::debug!(
                            source,
                            sessions = list.sessions.len(),
                            users = list.users.len(),
                            "resynchronised live revocations"
                        );
                    } else {
                        first_load(&list, &feed, source);
                    }
                    loaded = true;
                    before_load.reset();
                    after_load.reset();
                    wait = resync;
                }
                Err(e) => {
                    tracing::warn!(source, error = %e, loaded, "could not load revocations; retrying");
                    wait = if loaded {
                        after_load.next_delay()
                    } else {
                        before_load.next_delay()
                    };
                }
            }
        }
    });

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
