use std::time::Duration;

use zimmer_jwt::Signer;
use zimmer_service::Platform;

use crate::domain::{mail::Mailer, password::PasswordHasher, secrets::Secrets, throttle::Throttle};

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
}

/// Lifetimes and names of the email and 2FA flows.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Email verification link and code.
    pub verify_ttl: Duration,
    /// Password-reset link (api.md: 30 minutes).
    pub reset_ttl: Duration,
    /// The first-password link of a staff account created without one.
    pub invite_ttl: Duration,
    /// The issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// How old a session's sign-in may be for two-factor changes without the password.
    pub reauth_window: Duration,
}

impl FlowSettings {
    pub fn from_settings(settings: &zimmer_config::Settings) -> anyhow::Result<Self> {
        let env = &settings.env;
        Ok(Self {
            verify_ttl: Duration::from_secs(env.parse("EMAIL_VERIFY_TTL_SECS", 24 * 3600)?),
            reset_ttl: Duration::from_secs(env.parse("PASSWORD_RESET_TTL_SECS", 30 * 60)?),
            invite_ttl: Duration::from_secs(env.parse("STAFF_INVITE_TTL_SECS", 72 * 3600)?),
            totp_issuer: env.string("TOTP_ISSUER", "Zimmer"),
            reauth_window: Duration::from_secs(env.parse("REAUTH_WINDOW_SECS", 10 * 60)?),
        })
    }
}
