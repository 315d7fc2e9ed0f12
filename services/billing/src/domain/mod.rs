//! Pure rules: the price of a purchase, what a discount code takes off, whether a code applies,
//! and the return path the panel may ask for. No I/O here, so every rule is unit-tested.

use chrono::{DateTime, Utc};
use zimmer_db::models::billing::DiscountCode;

use crate::clients::zarinpal::{MAX_AMOUNT, MIN_AMOUNT};

/// Price in Rial of `tokens` at `price_per_token`; None when it overflows.
pub fn price(tokens: i64, price_per_token: i64) -> Option<i64> {
    tokens.checked_mul(price_per_token)
}

/// `(amount_discount, amount_after)`. The discount is rounded down to whole Rials, so the
/// payer never pays less than `percent` takes off (integer arithmetic only, no floats).
pub fn apply_percent(amount_before: i64, percent: i32) -> (i64, i64) {
    let percent = i128::from(percent.clamp(0, 100));
    let discount = (i128::from(amount_before) * percent / 100) as i64;
    (discount, amount_before - discount)
}

/// Why a discount code does not apply (docs/panels.md's `reason` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountRefusal {
    NotFound,
    InactiveOrWindow,
    NotApplicable,
    MaxRedeemed,
    PerUserLimit,
}

impl DiscountRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InactiveOrWindow => "inactive_or_window",
            Self::NotApplicable => "not_applicable",
            Self::MaxRedeemed => "max_redeemed",
            Self::PerUserLimit => "per_user_limit",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "This discount code does not exist",
            Self::InactiveOrWindow => "This discount code is not active now",
            Self::NotApplicable => "This discount code does not apply to this automation",
            Self::MaxRedeemed => "This discount code has been used up",
            Self::PerUserLimit => "You have already used this discount code",
        }
    }
}

/// How often a code is already used: reserved and confirmed redemptions only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub total: i64,
    pub by_user: i64,
}

/// Whether `code` applies to a purchase of `automation_id` by a user with `usage` so far.
/// `scope` is the code's set of automations; empty means every automation (docs/panels.md
/// "Discount codes for several automations").
pub fn check_discount(
    code: &DiscountCode,
    scope: &[i64],
    automation_id: Option<i64>,
    usage: Usage,
    now: DateTime<Utc>,
) -> Result<(), DiscountRefusal> {
    let in_window = code.starts_at.is_none_or(|s| s <= now) && code.ends_at.is_none_or(|e| now < e);
    if !code.active || !in_window {
        return Err(DiscountRefusal::InactiveOrWindow);
    }
    if !scope.is_empty() && !automation_id.is_some_and(|a| scope.contains(&a)) {
        return Err(DiscountRefusal::NotApplicable);
    }
    if let Some(max) = code.max_redemptions
        && usage.total >= i64::from(max)
    {
        return Err(DiscountRefusal::MaxRedeemed);
    }
    if let Some(limit) = code.per_user_limit
        && usage.by_user >= i64::from(limit)
    {
        return Err(DiscountRefusal::PerUserLimit);
    }
    Ok(())
}

/// A discount code as typed: trimmed and lower-cased (codes are stored that way). Empty means
/// "no code" (the panel sends `""` when the field is left blank).
pub fn normalize_code(raw: Option<&str>) -> Option<String> {
    let code = raw?.trim().to_lowercase();
    (!code.is_empty()).then_some(code)
}

/// The rules of a code an admin creates: 1..=64 letters, digits, `-` or `_`.
pub fn valid_code(code: &str) -> Result<(), &'static str> {
    let n = code.chars().count();
    if n == 0 {
        return Err("must not be empty");
    }
    if n > 64 {
        return Err("is too long");
    }
    if !code
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err("may contain only letters, digits, '-' and '_'");
    }
    Ok(())
}

/// Whether the gateway accepts `amount` Rial (a 100 % discount never reaches it).
pub fn amount_in_gateway_range(amount: i64) -> bool {
    (MIN_AMOUNT..=MAX_AMOUNT).contains(&amount)
}

/// A path on the user panel for the final redirect: one leading `/`, not `//host` or `/\host`
/// (an open redirect), no scheme, no fragment, no spaces or control characters, ≤ 512 bytes.
pub fn valid_return_path(path: &str) -> Result<(), &'static str> {
    if path.len() > 512 {
        return Err("is too long");
    }
    if !path.starts_with('/') || path.starts_with("//") || path.starts_with("/\\") {
        return Err("must be a path on the panel starting with one '/'");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '#' || c == '\\')
    {
        return Err("contains characters that are not allowed");
    }
    Ok(())
}

/// The panel's result page: `{frontend}{return_path}?payment_id=…&Authority=…&Status=…`.
pub fn result_page_url(
    frontend_url: &str,
    return_path: Option<&str>,
    payment_id: i64,
    authority: Option<&str>,
    status: &str,
) -> String {
    let path = return_path.unwrap_or("/payment/return");
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{}{path}{sep}payment_id={payment_id}",
        frontend_url.trim_end_matches('/')
    );
    if let Some(a) = authority {
        url.push_str("&Authority=");
        url.push_str(&query_escape(a));
    }
    url.push_str("&Status=");
    url.push_str(&query_escape(status));
    url
}

/// Percent-encodes everything but unreserved characters.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An authority as Zarinpal issues it (36 characters, `A` and alphanumerics); anything else is
/// refused before it reaches a query.
pub fn plausible_authority(a: &str) -> bool {
    (1..=64).contains(&a.len()) && a.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The description sent to the gateway and shown in the history (≤ 500 characters).
pub fn description(tokens: i64, automation_name: &str) -> String {
    let text = format!("خرید {tokens} توکن برای «{}»", automation_name.trim());
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Duration;

    use super::*;

    fn code() -> DiscountCode {
        DiscountCode {
            id: 1,
            code: "nowruz".into(),
            percent_off: 20,
            active: true,
            starts_at: None,
            ends_at: None,
            max_redemptions: Some(2),
            per_user_limit: Some(1),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            description: None,
        }
    }

    #[test]
    fn price_and_discount_are_integer_rials() {
        assert_eq!(price(3, 15_000), Some(45_000));
        assert_eq!(price(i64::MAX, 2), None);
        assert_eq!(apply_percent(45_000, 20), (9_000, 36_000));
        // Rounded down: 33 % of 10 001 is 3 300.33 → 3 300 off.
        assert_eq!(apply_percent(10_001, 33), (3_300, 6_701));
        assert_eq!(apply_percent(45_000, 100), (45_000, 0));
        assert_eq!(apply_percent(i64::MAX, 50).0, i64::MAX / 2);
    }

    #[test]
    fn discount_rules_in_order() {
        let now = Utc::now();
        let ok = Usage::default();
        assert_eq!(check_discount(&code(), &[7, 9], Some(7), ok, now), Ok(()));
        assert_eq!(
            check_discount(&code(), &[7, 9], Some(8), ok, now),
            Err(DiscountRefusal::NotApplicable)
        );
        assert_eq!(check_discount(&code(), &[7, 9], Some(9), ok, now), Ok(()));
        // Without an automation a scoped code cannot apply; an empty set applies to any.
        assert_eq!(
            check_discount(&code(), &[7, 9], None, ok, now),
            Err(DiscountRefusal::NotApplicable)
        );
        assert_eq!(check_discount(&code(), &[], Some(8), ok, now), Ok(()));
        assert_eq!(check_discount(&code(), &[], None, ok, now), Ok(()));
        let mut c = code();
        c.active = false;
        assert_eq!(
            check_discount(&c, &[7, 9], Some(7), ok, now),
            Err(DiscountRefusal::InactiveOrWindow)
        );
        let mut c = code();
        c.ends_at = Some(now);
        assert_eq!(
            check_discount(&c, &[7, 9], Some(7), ok, now),
            Err(DiscountRefusal::InactiveOrWindow)
        );
        let mut c = code();
        c.starts_at = Some(now + Duration::minutes(1));
        assert_eq!(
            check_discount(&c, &[7, 9], Some(7), ok, now),
            Err(DiscountRefusal::InactiveOrWindow)
        );
        for (total, by_user, refusal) in [
            (2, 0, DiscountRefusal::MaxRedeemed),
            (1, 1, DiscountRefusal::PerUserLimit),
        ] {
            let usage = Usage { total, by_user };
            assert_eq!(
                check_discount(&code(), &[7, 9], Some(7), usage, now),
                Err(refusal)
            );
        }
    }

    #[test]
    fn return_paths() {
        assert!(valid_return_path("/payment/return").is_ok());
        assert!(valid_return_path("/dashboard?tab=billing").is_ok());
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "payment",
            "/a b",
            "/a#b",
            "/a\nb",
        ] {
            assert!(valid_return_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn result_page() {
        assert_eq!(
            result_page_url("http://localhost:3000/", None, 5, Some("A00012"), "OK"),
            "http://localhost:3000/payment/return?payment_id=5&Authority=A00012&Status=OK"
        );
        assert_eq!(
            result_page_url("http://p", Some("/x?tab=1"), 5, None, "NOK"),
            "http://p/x?tab=1&payment_id=5&Status=NOK"
        );
    }

    #[test]
    fn codes_and_authorities() {
        assert_eq!(normalize_code(Some("  NowRuz ")).as_deref(), Some("nowruz"));
        assert_eq!(normalize_code(Some("  ")), None);
        assert!(valid_code("nowruz-1404").is_ok());
        assert!(valid_code("نوروز").is_ok());
        assert!(valid_code("a b").is_err());
        assert!(plausible_authority("A0000000000000000000000000000wwOGYpd"));
        assert!(!plausible_authority("A' OR 1=1"));
        assert!(!plausible_authority(""));
        assert!(description(5, "ربات").chars().count() <= 500);
    }
}
