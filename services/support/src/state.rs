use zimmer_events::RelayHandle;
use zimmer_service::Platform;

use crate::{config::SupportConfig, domain::attachment::AttachmentStore, workers::live::Hub};

/// What support's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub config: SupportConfig,
    pub store: AttachmentStore,
    pub hub: Hub,
    /// Support's outbox relay, woken right after a commit that wrote an event.
    pub relay: RelayHandle,
}
