//! OpenAI keys are stored encrypted with the configured key, and only a masked tail ever
//! leaves the API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{Call, With, World};
use diesel::{
    QueryableByName,
    sql_types::{Bytea, Text},
};
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::json;
use zimmer_admin::crypto::KeyCipher;
use zimmer_jwt::Role;

const SECRET: &str = "sk-proj-Zimmer7hisIsAV3ryS3cretValue9xQ4";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Bytea)]
    key_ciphertext: Vec<u8>,
    #[diesel(sql_type = Text)]
    key_tail: String,
    #[diesel(sql_type = Text)]
    everything: String,
}

async fn row(w: &World, id: i64) -> Row {
    let mut conn = w.ctx.db.connect().await;
    diesel::sql_query(format!(
        "SELECT key_ciphertext, key_tail, row_to_json(k)::text AS everything \
         FROM openai_keys k WHERE id = {id}"
    ))
    .get_result(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_never_holds_a_key_in_plaintext_and_the_api_shows_only_its_tail() {
    let master = [42u8; 32];
    let b64 = STANDARD.encode(master);
    let w = World::start_with(With::NONE, &[("OPENAI_KEYS_ENCRYPTION_KEY", b64.as_str())]).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let automation = w
        .insert(
            "INSERT INTO automations (name, description, price_per_token) \
             VALUES ('Keys bot', 'k', 1000) RETURNING id",
        )
        .await;

    let payload = json!({ "automation_id": automation, "alias": "primary", "key": format!("  {SECRET} "), "daily_limit": 1000 });
    let res = w
        .send(Method::POST, "/api/admin/openai-keys", &tech, &payload)
        .await;
    let text = res.text().await.unwrap();
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        !text.contains(SECRET) && !text.contains(&SECRET[3..20]),
        "{text}"
    );
    assert_eq!(created["key_tail"], "9xQ4");
    assert_eq!(created["key_masked"], "sk-…9xQ4");
    assert_eq!(created["status"], "active");
    assert_eq!(created["daily_limit"], 1000);
    assert_eq!(created["remaining_today"], 1000);
    let id = created["id"].as_i64().unwrap();

    // The row: no plaintext anywhere in it (not in any column, not as bytes of the
    // ciphertext), and the ciphertext is AES-256-GCM under the configured key.
    let r = row(&w, id).await;
    assert!(!r.everything.contains(SECRET), "{}", r.everything);
    assert!(
        !r.key_ciphertext
            .windows(SECRET.len())
            .any(|win| win == SECRET.as_bytes())
    );
    assert_eq!(
        r.key_ciphertext.len(),
        12 + SECRET.len() + 16,
        "nonce || ct || tag"
    );
    assert_eq!(r.key_tail, "9xQ4");
    let cipher = KeyCipher::new(&master).unwrap();
    assert_eq!(cipher.decrypt(&r.key_ciphertext).unwrap(), SECRET);
    assert!(
        KeyCipher::new(&[1u8; 32])
            .unwrap()
            .decrypt(&r.key_ciphertext)
            .is_err()
    );

    // The same key stored again gets a different ciphertext (a fresh nonce per value).
    let payload = json!({ "automation_id": automation, "alias": "secondary", "api_key": SECRET });
    let second = w
        .post(
            "/api/admin/openai-keys",
            &tech,
            &payload,
            StatusCode::CREATED,
        )
        .await;
    let r2 = row(&w, second["id"].as_i64().unwrap()).await;
    assert_ne!(r.key_ciphertext, r2.key_ciphertext);

    // Lists and views never carry the key either.
    for path in [
        "/api/admin/openai-keys".to_owned(),
        format!("/api/admin/openai-keys/{id}"),
    ] {
        let text = w.get(&path, &tech).await.text().await.unwrap();
        assert!(!text.contains(SECRET) && text.contains("9xQ4"), "{text}");
    }

    // Status, limits, rename; null removes the limit; a rotation re-encrypts.
    let payload = json!({ "status": "disabled", "daily_limit": null, "alias": "old primary" });
    let v = w
        .send_expecting(
            Method::PATCH,
            &format!("/api/admin/openai-keys/{id}"),
            &tech,
            &payload,
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["status"], "disabled");
    assert_eq!(v["daily_limit"], serde_json::Value::Null);
    assert_eq!(v["alias"], "old primary");
    let rotated = "sk-rotated-0000000000000000000Ab12";
    let payload = json!({ "key": rotated });
    let res = w
        .send(
            Method::PUT,
            &format!("/api/admin/openai-keys/{id}"),
            &tech,
            &payload,
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(text.contains("Ab12") && !text.contains(rotated), "{text}");
    let r = row(&w, id).await;
    assert_eq!(cipher.decrypt(&r.key_ciphertext).unwrap(), rotated);
    assert!(!r.everything.contains(rotated));

    // Refusals: duplicate alias, bad status, bad limit, bad key, unknown id.
    for (method, path, b, expected) in [
        (
            Method::POST,
            "/api/admin/openai-keys".to_owned(),
            json!({ "automation_id": automation, "alias": "secondary", "key": "sk-1234567890" }),
            409,
        ),
        (
            Method::POST,
            "/api/admin/openai-keys".to_owned(),
            json!({ "automation_id": automation, "alias": "x", "key": "sk-1234567890", "status": "lost" }),
            422,
        ),
        (
            Method::POST,
            "/api/admin/openai-keys".to_owned(),
            json!({ "automation_id": automation, "alias": "x", "key": "sk-1234567890", "daily_limit": 0 }),
            422,
        ),
        (
            Method::POST,
            "/api/admin/openai-keys".to_owned(),
            json!({ "automation_id": automation, "alias": "x", "key": "short" }),
            422,
        ),
        (
            Method::POST,
            "/api/admin/openai-keys".to_owned(),
            json!({ "automation_id": automation, "alias": "\u{202E}x", "key": "sk-1234567890" }),
            422,
        ),
        (
            Method::PUT,
            "/api/admin/openai-keys/999".to_owned(),
            json!({ "status": "active" }),
            404,
        ),
        (
            Method::PUT,
            format!("/api/admin/openai-keys/{id}"),
            json!({ "alias": "secondary" }),
            409,
        ),
    ] {
        let res = w.send(method.clone(), &path, &tech, &b).await;
        assert_eq!(res.status().as_u16(), expected, "{method} {path} {b}");
    }

    // Delete; every change was audited without the key.
    w.admin
        .delete(&format!("/api/admin/openai-keys/{id}"))
        .bearer_auth(&tech)
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    assert_eq!(
        w.get(&format!("/api/admin/openai-keys/{id}"), &tech)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let log = w
        .count("SELECT count(*) AS n FROM admin_audit_log WHERE target_type = 'openai_key'")
        .await;
    assert_eq!(log, 5, "2 creates, 2 updates, 1 delete");
    let leaked = w
        .count(&format!(
            "SELECT count(*) AS n FROM admin_audit_log WHERE details::text LIKE '%{}%' \
             OR details::text LIKE '%{}%'",
            &SECRET[3..],
            &rotated[3..]
        ))
        .await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn production_refuses_to_start_without_the_encryption_key() {
    let ctx = zimmer_testkit::TestContext::new().await;
    let settings = ctx.settings(
        "admin",
        &[
            ("APP_ENV", "production"),
            ("INTERNAL_API_TOKEN", "a-real-token"),
        ],
    );
    let err = zimmer_admin::build(settings).await.err().unwrap();
    assert!(
        err.to_string().contains("OPENAI_KEYS_ENCRYPTION_KEY"),
        "{err}"
    );
    let settings = ctx.settings("admin", &[("OPENAI_KEYS_ENCRYPTION_KEY", "dG9vIHNob3J0")]);
    assert!(zimmer_admin::build(settings).await.is_err());
}
