use zimmer_service::Platform;

use crate::ops::settle::Billing;

/// What billing's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub billing: Billing,
}
