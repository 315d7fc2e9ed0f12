use std::sync::Arc;

use zimmer_service::Platform;

use crate::{clients::Upstreams, config::AdminConfig, crypto::KeyCipher};

/// What admin's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub config: Arc<AdminConfig>,
    pub cipher: KeyCipher,
    pub upstreams: Upstreams,
}
