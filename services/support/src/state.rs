use zimmer_service::Platform;

use crate::{config::SupportConfig, domain::attachment::AttachmentStore, workers::live::Hub};

/// What support's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub config: SupportConfig,
    pub store: AttachmentStore,
    pub hub: Hub,
}
