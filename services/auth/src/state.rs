use zimmer_jwt::Signer;
use zimmer_service::Platform;

use crate::domain::password::PasswordHasher;

/// What auth's handlers need, registered once as app data.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub signer: Signer,
    pub hasher: PasswordHasher,
}
