//! What every resilience test sets up first: an automation with a service token, a customer who
//! added it, a manager, and (optionally) a paid balance — made through the real marketplace.

use reqwest::StatusCode;
use serde_json::{Value, json};
use zimmer_jwt::Role;
use zimmer_testkit::TestContext;

/// Every test process runs the services with the development credential of admin.
pub const INTERNAL_TOKEN: &str = zimmer_config::DEV_INTERNAL_TOKEN;

/// A customer's automation, ready to consume.
pub struct Funded {
    pub service_token: String,
    pub customer: i64,
    pub manager: i64,
    /// The customer's access token.
    pub access: String,
    pub user_automation_id: i64,
}

/// Creates the automation and its service token through marketplace's internal API at
/// `market`, lets a new customer (`<tag>@example.com`) add it through `public` (the gateway or
/// the marketplace itself), and credits `tokens` paid tokens (none when 0) with the
/// idempotency key `<tag>-fund`.
pub async fn funded_automation(
    ctx: &TestContext,
    http: &reqwest::Client,
    market: &str,
    public: &str,
    tag: &str,
    tokens: i64,
) -> Funded {
    let res = http
        .post(format!("{market}/internal/automations"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .json(&json!({
            "name": format!("{tag} bot"), "description": "resilience test",
            "pricing_type": "token_per_session", "price_per_token": 10_000, "demo_tokens": 0,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let automation_id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = http
        .post(format!(
            "{market}/internal/automations/{automation_id}/service-token"
        ))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let service_token = res.json::<Value>().await.unwrap()["service_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (customer, access) = ctx
        .user_with_token(&format!("{tag}@example.com"), Role::Customer)
        .await;
    let manager = ctx
        .create_user(&format!("{tag}-mgr@example.com"), Role::Manager)
        .await;
    let res = http
        .post(format!("{public}/api/user/automations/{automation_id}"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let user_automation_id = res.json::<Value>().await.unwrap()["user_automation"]["id"]
        .as_i64()
        .unwrap();
    let funded = Funded {
        service_token,
        customer,
        manager,
        access,
        user_automation_id,
    };
    if tokens != 0 {
        let status = adjust(http, market, &funded, tokens, &format!("{tag}-fund")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    funded
}

/// Moves `f`'s paid balance by `delta` through marketplace's internal API at `market`, once
/// per `key`.
pub async fn adjust(
    http: &reqwest::Client,
    market: &str,
    f: &Funded,
    delta: i64,
    key: &str,
) -> StatusCode {
    http.post(format!("{market}/internal/tokens/adjust"))
        .header("X-Internal-Token", INTERNAL_TOKEN)
        .json(&json!({
            "user_automation_id": f.user_automation_id, "delta": delta,
            "reason": "resilience test", "idempotency_key": key, "actor_id": f.manager,
        }))
        .send()
        .await
        .unwrap()
        .status()
}
