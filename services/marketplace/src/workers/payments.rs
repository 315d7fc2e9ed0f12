//! `payment.verified` → purchased tokens credited exactly once.
//!
//! Two guards, in the same transaction as the credit: the consumer inbox (this event id was
//! handled, so a redelivery after a crash between commit and ack is a no-op) and the ledger's
//! unique source key `payment:<payment_id>` (so even a second, different event about the same
//! payment credits nothing). The credit itself is `ops::credit`; this is the consumer.

use diesel_async::AsyncPgConnection;
use zimmer_events::{BoxFuture, Envelope, EventHandler, HandlerError};

use crate::ops;

/// Queue `<exchange>.marketplace.payments`, and the inbox's consumer name.
pub const PAYMENTS_CONSUMER: &str = "marketplace.payments";

pub struct PaymentCredits {
    pub low_threshold: i64,
}

impl EventHandler for PaymentCredits {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(ops::credit::credit(conn, event, self.low_threshold))
    }
}
