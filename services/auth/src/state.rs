use zimmer_jwt::Signer;
use zimmer_service::Platform;

use crate::{
    cache::UserCache,
    clients::mail::Mailer,
    config::FlowSettings,
    domain::{secrets::Secrets, throttle::Throttle},
    workers::hashing::PasswordHasher,
};

/// What auth's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub signer: Signer,
    pub hasher: PasswordHasher,
    pub mailer: Mailer,
    pub secrets: Secrets,
    pub throttle: Throttle,
    pub flows: FlowSettings,
    /// `/api/me` answers (`cache.rs`); every write to a user row forgets that user.
    pub users: UserCache,
}
