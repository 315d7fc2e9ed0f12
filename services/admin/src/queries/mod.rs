//! Database access of admin. Admin READS every table (dashboards and lists) and WRITES only its
//! own (`openai_keys`, `admin_audit_log`) and the outbox. Every function takes
//! `&mut AsyncPgConnection`, so a handler composes its writes and the audit entry (and an
//! outbox row) into one transaction.

pub mod audit;
pub mod automations;
pub mod backups;
pub mod keys;
pub mod ledger;
pub mod payments;
pub mod stats;
pub mod tickets;
pub mod user_automations;
pub mod users;

/// `LIKE` pattern matching `text` anywhere, with the pattern characters escaped.
pub fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(super::contains_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
