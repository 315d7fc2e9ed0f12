//! Rules with no I/O of their own: ticket statuses and their transitions, what an attachment
//! may be, the Persian texts of the notifications, the payloads of the live-notification
//! signal, and the response shapes (`views`) that queries, ops and handlers all return.

pub mod attachment;
pub mod signal;
pub mod status;
pub mod texts;
pub mod views;
