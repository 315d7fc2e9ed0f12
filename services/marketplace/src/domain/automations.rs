//! The rules of an automation as staff edit it (docs/panels.md "Automations and service
//! tokens", "Automations: vendor URLs"): which fields and which values (how the stored row is
//! shown to staff is `zimmer_db`'s row → contract conversion, shared with admin). The SSRF
//! check of the URLs needs DNS and lives in `clients::outbound`.

use chrono::Utc;
use zimmer_db::models::marketplace::AutomationChanges;
use zimmer_events::contracts::internal::automations::{
    AutomationInput, service_token_is_well_formed, service_token_tail,
};
use zimmer_http::{ApiError, validate};

use super::tokens::token_hash;

pub const PRICING_TYPES: [&str; 3] = ["token_per_session", "token_per_step", "flat_fee"];
pub const STATUSES: [&str; 2] = ["active", "inactive"];
/// 10^12 Rials: far above any real per-token price, far below BIGINT overflow in totals.
pub const MAX_PRICE: i64 = 1_000_000_000_000;
pub const MAX_DEMO_TOKENS: i64 = 100_000;
pub const URL_MAX: usize = 2048;

/// The URL fields, as `(field name, value)`; every one is a vendor address checked by the
/// outbound guard before it is stored.
pub fn urls(c: &AutomationChanges) -> [(&'static str, &Option<Option<String>>); 7] {
    [
        ("provision_url", &c.provision_url),
        ("health_check_url", &c.health_check_url),
        ("api_base_url", &c.api_base_url),
        ("api_usage_url", &c.api_usage_url),
        ("api_kb_status_url", &c.api_kb_status_url),
        ("api_kb_reset_url", &c.api_kb_reset_url),
        ("dashboard_url", &c.dashboard_url),
    ]
}

/// Absent stays absent; `null` and blank clear; anything else must be an http(s) URL with a
/// host (trimmed).
fn check_url(
    v: &mut validate::Validator,
    field: &'static str,
    raw: Option<Option<String>>,
) -> Option<Option<String>> {
    match raw {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) if s.trim().is_empty() => Some(None),
        Some(Some(s)) => {
            let s = s.trim().to_owned();
            let ok = s.len() <= URL_MAX
                && reqwest::Url::parse(&s).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                });
            if ok {
                Some(Some(s))
            } else {
                v.error(field, "must be an http(s) URL");
                None
            }
        }
    }
}

/// A checked create or update: the column changes, and on create the client's chosen service
/// token as `(hash, tail)`.
#[derive(Debug)]
pub struct Checked {
    pub changes: AutomationChanges,
    pub token: Option<(Vec<u8>, String)>,
}

/// Validates `input`; `creating` requires name and price and allows `service_token`.
pub fn check(input: AutomationInput, creating: bool) -> Result<Checked, ApiError> {
    let mut v = validate::Validator::new();
    if creating && input.name.is_none() {
        v.error("name", "is required");
    }
    if creating && input.price_per_token.is_none() {
        v.error("price_per_token", "is required");
    }
    let name = input
        .name
        .and_then(|n| v.check("name", validate::line(&n, 200)));
    let description = match input.description {
        None => None,
        Some(d) if d.trim().is_empty() => Some(String::new()),
        Some(d) => v.check("description", validate::text(&d, 5000)),
    };
    if let Some(p) = &input.pricing_type
        && !PRICING_TYPES.contains(&p.as_str())
    {
        v.error(
            "pricing_type",
            "must be token_per_session, token_per_step or flat_fee",
        );
    }
    if let Some(p) = input.price_per_token
        && !(0..=MAX_PRICE).contains(&p)
    {
        v.error("price_per_token", "must be between 0 and 10^12 Rials");
    }
    if let Some(d) = input.demo_tokens
        && !(0..=MAX_DEMO_TOKENS).contains(&d)
    {
        v.error("demo_tokens", "must be between 0 and 100000");
    }
    if let Some(s) = &input.status
        && !STATUSES.contains(&s.as_str())
    {
        v.error("status", "must be active or inactive");
    }
    let token = match input.service_token {
        None => None,
        Some(_) if !creating => {
            v.error(
                "service_token",
                "cannot be set by an update: issue a new token instead",
            );
            None
        }
        Some(t) if service_token_is_well_formed(t.expose()) => {
            Some((token_hash(t.expose()), service_token_tail(t.expose())))
        }
        Some(_) => {
            v.error(
                "service_token",
                "must be 32 to 256 visible ASCII characters (no spaces)",
            );
            None
        }
    };
    let changes = AutomationChanges {
        name,
        description,
        pricing_type: input.pricing_type,
        price_per_token: input.price_per_token,
        demo_tokens: input.demo_tokens,
        status: input.status,
        is_listed: input.is_listed,
        provision_url: check_url(&mut v, "provision_url", input.provision_url),
        health_check_url: check_url(&mut v, "health_check_url", input.health_check_url),
        api_base_url: check_url(&mut v, "api_base_url", input.api_base_url),
        api_usage_url: check_url(&mut v, "api_usage_url", input.api_usage_url),
        api_kb_status_url: check_url(&mut v, "api_kb_status_url", input.api_kb_status_url),
        api_kb_reset_url: check_url(&mut v, "api_kb_reset_url", input.api_kb_reset_url),
        dashboard_url: check_url(&mut v, "dashboard_url", input.dashboard_url),
        updated_at: Some(Utc::now()),
    };
    v.finish()?;
    Ok(Checked { changes, token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zimmer_events::contracts::internal::automations::Secret;

    #[test]
    fn blank_urls_clear_absent_ones_stay_and_bad_ones_are_refused() {
        let input = AutomationInput {
            api_base_url: Some(Some("  ".into())),
            api_kb_status_url: Some(Some(" https://v.example/kb ".into())),
            dashboard_url: Some(None),
            ..AutomationInput::default()
        };
        let c = check(input, false).map(|c| c.changes).ok();
        let c = c.as_ref();
        assert_eq!(c.and_then(|c| c.api_base_url.clone()), Some(None));
        assert_eq!(
            c.and_then(|c| c.api_kb_status_url.clone()),
            Some(Some("https://v.example/kb".into()))
        );
        assert_eq!(c.and_then(|c| c.dashboard_url.clone()), Some(None));
        assert_eq!(c.and_then(|c| c.api_usage_url.clone()), None);
        assert_eq!(c.and_then(|c| c.is_listed), None);
        let bad = AutomationInput {
            api_usage_url: Some(Some("ftp://v.example".into())),
            ..AutomationInput::default()
        };
        assert!(check(bad, false).is_err());
    }

    #[test]
    fn a_chosen_token_only_on_create_and_well_formed() {
        let token = "t".repeat(40) + "WXYZ";
        let input = |t: &str| AutomationInput {
            name: Some("A".into()),
            price_per_token: Some(1),
            service_token: Some(Secret::new(t)),
            ..AutomationInput::default()
        };
        let checked = check(input(&token), true).ok().and_then(|c| c.token);
        assert_eq!(checked, Some((token_hash(&token), "WXYZ".to_owned())));
        assert!(check(input(&token), false).is_err());
        assert!(check(input("short"), true).is_err());
    }
}
