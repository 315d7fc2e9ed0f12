//! Auth's configuration, read once at start by `build`: a bad value stops the start with a
//! clear error before anything connects (in production a missing `TWOFA_ENCRYPTION_KEY` or
//! `SMTP_URL` is one). Variables and defaults: README.md.

use std::time::Duration;

use zimmer_config::Settings;

use crate::{
    clients::mail::Mailer,
    domain::{secrets::Secrets, throttle::Policy},
};

/// Everything auth reads from the environment besides the platform's own settings.
pub struct AuthConfig {
    pub secrets: Secrets,
    pub mailer: Mailer,
    pub policy: Policy,
    pub flows: FlowSettings,
}

impl AuthConfig {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            secrets: Secrets::from_settings(settings)?,
            mailer: Mailer::from_settings(settings)?,
            policy: Policy::from_settings(settings)?,
            flows: FlowSettings::from_settings(settings)?,
        })
    }
}

/// Lifetimes and names of the email and 2FA flows.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Email verification link and code.
    pub verify_ttl: Duration,
    /// Password-reset link (docs/api.md: 30 minutes).
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
