//! The admin dashboard's words for an automation (docs/panels.md "Automations and service
//! tokens") and ours: `status` a boolean there (the strings stay accepted), `token_per_message`
//! there for our `token_per_step`, `api_provision_url` there for our `provision_url`, a whole
//! price that may arrive as `1500.0` (a fraction is refused), `null` or `""` for "no URL".
//! The marketplace validates the values themselves; here only the vocabulary and the JSON
//! types are settled.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use zimmer_events::contracts::internal::automations::{
    AutomationInput, SERVICE_TOKEN_PREFIX, Secret,
};
use zimmer_http::{ApiError, validate::Validator};

/// Our pricing type in the dashboard's word.
pub fn dashboard_pricing_type(ours: String) -> String {
    if ours == "token_per_step" {
        "token_per_message".to_owned()
    } else {
        ours
    }
}

/// A text field: absent or `null` → absent; a string → itself.
fn text(v: &mut Validator, map: &Map<String, Value>, field: &'static str) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            v.error(field, "must be a string");
            None
        }
    }
}

/// A URL field: absent → unchanged; `null` → cleared; a string → itself (`""` clears, the
/// marketplace decides).
fn url(v: &mut Validator, map: &Map<String, Value>, field: &'static str) -> Option<Option<String>> {
    match map.get(field) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => {
            v.error(field, "must be a URL string or null");
            None
        }
    }
}

/// A whole number: `1500`, `1500.0` or `"1500"`; a fraction or anything else is refused.
fn whole(v: &mut Validator, map: &Map<String, Value>, field: &'static str) -> Option<i64> {
    let parsed = match map.get(field) {
        None | Some(Value::Null) => return None,
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().and_then(whole_f64)),
        Some(Value::String(s)) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole_f64))
        }
        Some(_) => None,
    };
    if parsed.is_none() {
        v.error(field, "must be a whole number");
    }
    parsed
}

fn whole_f64(f: f64) -> Option<i64> {
    // Bounds well inside i64 (the marketplace caps prices far lower).
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= 1e15).then_some(f as i64)
}

/// The dashboard's create (`creating`) or edit body as the marketplace's input. On edit the
/// wizard's `service_token` is ignored (a token changes only through its own buttons).
pub fn input_from_dashboard(body: Value, creating: bool) -> Result<AutomationInput, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let mut v = Validator::new();
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(true)) => Some("active".to_owned()),
        Some(Value::Bool(false)) => Some("inactive".to_owned()),
        Some(Value::String(s)) => Some(match s.trim() {
            "true" => "active".to_owned(),
            "false" => "inactive".to_owned(),
            other => other.to_owned(),
        }),
        Some(_) => {
            v.error("status", "must be true, false, active or inactive");
            None
        }
    };
    let is_listed = match map.get("is_listed") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            v.error("is_listed", "must be true or false");
            None
        }
    };
    let pricing_type = text(&mut v, &map, "pricing_type").map(|p| {
        if p == "token_per_message" {
            "token_per_step".to_owned()
        } else {
            p
        }
    });
    // Our name wins when both are sent; the dashboard sends only `api_provision_url`.
    let provision_url = if map.contains_key("provision_url") {
        url(&mut v, &map, "provision_url")
    } else {
        url(&mut v, &map, "api_provision_url")
    };
    let service_token = if creating {
        text(&mut v, &map, "service_token")
            .filter(|t| !t.is_empty())
            .map(Secret::new)
    } else {
        None
    };
    let input = AutomationInput {
        name: text(&mut v, &map, "name"),
        // "" or null: no description.
        description: match map.get("description") {
            Some(Value::Null) => Some(String::new()),
            _ => text(&mut v, &map, "description"),
        },
        pricing_type,
        price_per_token: whole(&mut v, &map, "price_per_token"),
        demo_tokens: whole(&mut v, &map, "demo_tokens"),
        status,
        is_listed,
        provision_url,
        health_check_url: url(&mut v, &map, "health_check_url"),
        api_base_url: url(&mut v, &map, "api_base_url"),
        api_usage_url: url(&mut v, &map, "api_usage_url"),
        api_kb_status_url: url(&mut v, &map, "api_kb_status_url"),
        api_kb_reset_url: url(&mut v, &map, "api_kb_reset_url"),
        dashboard_url: url(&mut v, &map, "dashboard_url"),
        service_token,
    };
    v.finish()?;
    Ok(input)
}

/// A new service token in the platform's format (256 random bits), for the wizard's
/// generate-token: nothing is stored until the automation is created with it.
pub fn new_service_token() -> String {
    let mut buf = [0u8; 32];
    // The system RNG failing is not something to keep serving through.
    if SystemRandom::new().fill(&mut buf).is_err() {
        std::process::abort();
    }
    format!("{SERVICE_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use zimmer_events::contracts::internal::automations::service_token_is_well_formed;

    use super::*;

    #[test]
    fn the_dashboards_words_become_ours() {
        let i = input_from_dashboard(
            json!({
                "name": "Bot", "status": true, "pricing_type": "token_per_message",
                "price_per_token": 1500.0, "api_provision_url": "https://v.example/p",
                "api_base_url": null, "api_usage_url": "", "service_token": "",
            }),
            true,
        )
        .unwrap_or_default();
        assert_eq!(i.status.as_deref(), Some("active"));
        assert_eq!(i.pricing_type.as_deref(), Some("token_per_step"));
        assert_eq!(i.price_per_token, Some(1500));
        assert_eq!(i.provision_url, Some(Some("https://v.example/p".into())));
        assert_eq!(i.api_base_url, Some(None));
        assert_eq!(i.api_usage_url, Some(Some(String::new())));
        assert_eq!(i.api_kb_status_url, None);
        assert_eq!(i.service_token, None);
        assert_eq!(i.is_listed, None);
        let off = input_from_dashboard(json!({"status": "inactive"}), false).unwrap_or_default();
        assert_eq!(off.status.as_deref(), Some("inactive"));
        assert_eq!(
            dashboard_pricing_type("token_per_step".into()),
            "token_per_message"
        );
    }

    #[test]
    fn fractions_and_wrong_types_are_refused() {
        assert!(input_from_dashboard(json!({"price_per_token": 10.5}), false).is_err());
        assert!(input_from_dashboard(json!({"status": 1}), false).is_err());
        assert!(input_from_dashboard(json!({"api_base_url": 5}), false).is_err());
        assert!(input_from_dashboard(json!([]), false).is_err());
    }

    #[test]
    fn a_token_only_on_create_and_issued_ones_are_well_formed() {
        let body = json!({"service_token": "x".repeat(40)});
        let created = input_from_dashboard(body.clone(), true).unwrap_or_default();
        assert!(created.service_token.is_some());
        let edited = input_from_dashboard(body, false).unwrap_or_default();
        assert!(edited.service_token.is_none());
        let t = new_service_token();
        assert!(t.starts_with("zst_") && service_token_is_well_formed(&t));
        assert_ne!(t, new_service_token());
    }
}
