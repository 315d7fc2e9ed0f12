//! The auth service: accounts, sessions, refresh-token rotation, email verification, password
//! reset, TOTP two-factor, login throttling, the internal user API for admin, and the signing
//! key whose public half every other service verifies with.

pub mod cache;
pub mod clients;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod ops;
pub mod queries;
pub mod routes;
pub mod seed;
mod state;
pub mod workers;

use std::sync::Arc;

use zimmer_config::Settings;
use zimmer_jwt::{Signer, Verifier};
use zimmer_service::{Application, Platform, RevocationLoader};

pub use config::{AuthConfig, FlowSettings};
pub use state::AppState;

use crate::{domain::throttle::Throttle, workers::hashing::PasswordHasher};

/// Auth's live revocations, read from its own database: after a restart its in-memory set
/// is empty, and a token logged out before the restart must stay rejected. Loaded before
/// `/readyz` passes and before any token is accepted, then resynced like everywhere else.
fn own_revocations(settings: &Settings) -> RevocationLoader {
    let ttl = i64::try_from(settings.jwt.access_ttl.as_secs()).unwrap_or(3600);
    Arc::new(move |pool| {
        Box::pin(async move {
            let mut conn = pool.get().await?;
            let since = chrono::Utc::now() - chrono::Duration::seconds(ttl);
            Ok(queries::live_revocations(&mut conn, since, ttl).await?)
        })
    })
}

/// Builds auth: the platform, the outbox relay, and the routes.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let pem = settings.jwt.private_key_pem.clone().ok_or_else(|| {
        anyhow::anyhow!("JWT_PRIVATE_KEY_FILE (or JWT_PRIVATE_KEY) must be set for auth")
    })?;
    let signer = Signer::from_pem(pem.expose())?;
    // Configuration errors stop the start here, before anything connects (in production a
    // missing TWOFA_ENCRYPTION_KEY is one).
    let AuthConfig {
        secrets,
        mailer,
        policy,
        flows,
    } = AuthConfig::from_settings(&settings)?;
    let verifier = Verifier::from_signer(&signer, &settings.jwt)?;
    let own_revocations = own_revocations(&settings);
    let mut platform =
        Platform::start_with_own_revocations(settings, verifier, own_revocations).await?;
    platform.spawn_outbox_relay(ops::PRODUCER);
    let throttle = Throttle::new(platform.redis.clone(), policy, &platform.metrics.registry);
    let users = cache::from_env();
    let _user_events = cache::listen(&users, &platform.broker);
    let state = AppState {
        platform: platform.clone(),
        signer,
        hasher: PasswordHasher::new(),
        mailer,
        secrets,
        throttle,
        flows,
        users,
    };
    platform.serve_table(state, routes::DOC, routes::ROUTES)
}
