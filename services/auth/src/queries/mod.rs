//! Auth's database access, SQL only, one file per table or topic. Every function takes the
//! connection, so `ops` composes them in one transaction together with the outbox insert of
//! the event they cause.

mod account;
mod email;
mod password_reset;
mod sessions;
mod twofa;
mod users;

pub use account::*;
pub use email::*;
pub use password_reset::*;
pub use sessions::*;
pub use twofa::*;
pub use users::*;
