//! Database access of the marketplace. Every function takes `&mut AsyncPgConnection`, so a
//! handler composes several of them (and the outbox insert) into one transaction.

pub mod automations;
pub mod cache;
pub mod catalogue;
pub mod consume;
pub mod fallbacks;
pub mod kb_monitoring;
pub mod knowledge;
pub mod ledger;
pub mod provisioning;
pub mod usage;
pub mod user_automations;

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
