//! Support's configuration, read once at start (`build`) and kept in the app state.

use std::time::Duration;

use zimmer_config::{ConfigError, Settings};

use crate::domain::attachment::DEFAULT_MAX_BYTES;

/// Support's own settings (`settings.env`), with defaults that work locally.
#[derive(Debug, Clone)]
pub struct SupportConfig {
    /// `ATTACHMENTS_DIR`, default `.data/attachments`.
    pub attachments_dir: String,
    /// `ATTACHMENT_MAX_BYTES`, default 5 MiB.
    pub max_attachment_bytes: usize,
    /// `SSE_KEEPALIVE_SECS`, default 5: below every proxy's idle timeout, and short because a
    /// write is what reveals a client that went away without closing cleanly.
    pub sse_keepalive: Duration,
    /// `SSE_MAX_STREAMS_PER_USER`, default 5 per instance (a few tabs); a newer stream
    /// replaces the user's oldest.
    pub max_streams_per_user: usize,
    /// `SSE_MAX_STREAMS`, default 5000: all streams of one instance (each holds a connection
    /// and a little memory); beyond it new streams get 503. Read once at start.
    pub max_streams: usize,
    /// `TICKETS_PER_HOUR`, default 20 new tickets per user and hour.
    pub tickets_per_hour: u64,
    /// `MESSAGES_PER_10_MIN`, default 60 customer messages per user and 10 minutes.
    pub messages_per_10_min: u64,
    /// The platform's `JSON_BODY_LIMIT` (bytes of a JSON body), also the bound of a ticket form's
    /// text fields.
    pub json_limit: usize,
}

impl SupportConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.env;
        Ok(Self {
            attachments_dir: env.string("ATTACHMENTS_DIR", ".data/attachments"),
            max_attachment_bytes: env.parse("ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES)?,
            sse_keepalive: Duration::from_secs(env.parse("SSE_KEEPALIVE_SECS", 5u64)?.max(1)),
            max_streams_per_user: env.parse("SSE_MAX_STREAMS_PER_USER", 5usize)?.max(1),
            max_streams: env.parse("SSE_MAX_STREAMS", 5000usize)?.max(1),
            tickets_per_hour: env.parse("TICKETS_PER_HOUR", 20u64)?,
            messages_per_10_min: env.parse("MESSAGES_PER_10_MIN", 60u64)?,
            json_limit: settings.json_limit,
        })
    }
}
