//! Billing's database access, SQL only, one file per table or topic. Every function takes the
//! connection, so `ops` composes them in one transaction with the outbox insert of the event
//! they cause. State changes of a payment are single conditional statements (`UPDATE … WHERE
//! status … RETURNING`), so of any number of concurrent callers exactly one wins and the
//! others see the row as it now is.

mod claims;
mod discounts;
mod marketplace;
mod payments;

use std::time::Duration;

pub use claims::*;
pub use discounts::*;
pub use marketplace::*;
pub use payments::*;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
