//! Ticket statuses, priorities, and which status changes are allowed.
//!
//! Decisions (the spec leaves them open):
//! - `closed` is final. Nobody writes to or changes a closed ticket (409 `ticket_closed`); a
//!   customer with a new problem opens a new ticket. This keeps a closed conversation an
//!   immutable record and makes "closed" mean the same thing on both sides.
//! - `resolved` is "we think it is done": a new customer message reopens it (→ `open`), so a
//!   customer whose problem is not solved just answers.
//! - A customer message on a `pending` ticket (waiting on the customer) moves it back to
//!   `open`; on `open` or `in_progress` it keeps the status.
//! - A staff reply on an `open` ticket moves it to `in_progress` (someone is on it); otherwise
//!   the status stays unless the same request sets one.
//! - The ticket's owner may only close it; support staff and managers may move it between any
//!   two statuses other than out of `closed`.

pub const STATUSES: [&str; 5] = ["open", "pending", "in_progress", "resolved", "closed"];
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
pub const CLOSED: &str = "closed";

/// A status as a client may write it (any case, spaces around).
pub fn parse_status(raw: &str) -> Result<String, &'static str> {
    one_of(
        raw,
        &STATUSES,
        "must be one of open, pending, in_progress, resolved, closed",
    )
}

/// A priority (or importance) as a client may write it.
pub fn parse_priority(raw: &str) -> Result<String, &'static str> {
    one_of(raw, &PRIORITIES, "must be one of low, medium, high, urgent")
}

fn one_of(raw: &str, allowed: &[&str], refused: &'static str) -> Result<String, &'static str> {
    let value = raw.trim().to_ascii_lowercase();
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(refused)
    }
}

/// Who changes a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The ticket's owner (whatever their role).
    Customer,
    /// Support staff or a manager acting on someone else's ticket.
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionError {
    /// The ticket is closed: nothing changes any more.
    Closed,
    /// The owner asked for something other than closing.
    CustomerMayOnlyClose,
}

/// Whether `side` may move a ticket from `from` to `to` (same status = no change, allowed
/// unless the ticket is closed and `to` differs).
pub fn check_transition(from: &str, to: &str, side: Side) -> Result<(), TransitionError> {
    if from == to {
        return Ok(());
    }
    if from == CLOSED {
        return Err(TransitionError::Closed);
    }
    match side {
        Side::Staff => Ok(()),
        Side::Customer if to == CLOSED => Ok(()),
        Side::Customer => Err(TransitionError::CustomerMayOnlyClose),
    }
}

/// The status after a new message from `side`, or `Closed` when the ticket takes no messages.
pub fn after_message(current: &str, side: Side) -> Result<&'static str, TransitionError> {
    let next = match (current, side) {
        (CLOSED, _) => return Err(TransitionError::Closed),
        ("resolved" | "pending", Side::Customer) => "open",
        ("open", Side::Staff) => "in_progress",
        (other, _) => STATUSES.into_iter().find(|s| *s == other).unwrap_or("open"),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final() {
        for to in STATUSES {
            if to != CLOSED {
                assert_eq!(
                    check_transition(CLOSED, to, Side::Staff),
                    Err(TransitionError::Closed)
                );
            }
        }
        assert_eq!(check_transition(CLOSED, CLOSED, Side::Customer), Ok(()));
        assert_eq!(
            after_message(CLOSED, Side::Customer),
            Err(TransitionError::Closed)
        );
        assert_eq!(
            after_message(CLOSED, Side::Staff),
            Err(TransitionError::Closed)
        );
    }

    #[test]
    fn customers_may_only_close() {
        assert_eq!(check_transition("open", CLOSED, Side::Customer), Ok(()));
        assert_eq!(check_transition("resolved", CLOSED, Side::Customer), Ok(()));
        assert_eq!(
            check_transition("open", "resolved", Side::Customer),
            Err(TransitionError::CustomerMayOnlyClose)
        );
        assert_eq!(check_transition("open", "resolved", Side::Staff), Ok(()));
        assert_eq!(check_transition("resolved", "open", Side::Staff), Ok(()));
    }

    #[test]
    fn messages_move_the_status() {
        assert_eq!(after_message("resolved", Side::Customer), Ok("open"));
        assert_eq!(after_message("pending", Side::Customer), Ok("open"));
        assert_eq!(
            after_message("in_progress", Side::Customer),
            Ok("in_progress")
        );
        assert_eq!(after_message("open", Side::Staff), Ok("in_progress"));
        assert_eq!(after_message("pending", Side::Staff), Ok("pending"));
        assert_eq!(after_message("resolved", Side::Staff), Ok("resolved"));
    }
}
