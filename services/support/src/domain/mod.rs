//! Rules with no I/O of their own: ticket statuses and their transitions, what an attachment
//! may be, and the Persian texts of the notifications.

pub mod attachment;
pub mod status;
pub mod texts;
