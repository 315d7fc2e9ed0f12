//! Attacks on access tokens: every forged or stale token is a 401, in auth and in another
//! service (marketplace) that verifies with the public key only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use zimmer_jwt::{Claims, Role, Signer};

fn claims(user_id: i64, sid: Uuid) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        sub: user_id.to_string(),
        role: Role::Customer,
        sid,
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + 600,
        iss: "zimmer-auth".into(),
        aud: "zimmer".into(),
        auth_time: None,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_misaddressed_tokens_are_rejected_everywhere() {
    let (ctx, auth, market) = auth_and_market().await;
    let r = register(&auth, "victim@example.com", PASSWORD).await;
    let sid = Uuid::new_v4();
    let good = ctx.signer.sign(&claims(r.user_id, sid)).unwrap();

    let other_signer = Signer::from_pem(&zimmer_jwt::generate_ed25519_pem().unwrap()).unwrap();
    let other_key = other_signer.sign(&claims(r.user_id, sid)).unwrap();

    // `kid` of the real key but signed by another one.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(ctx.signer.jwk().kid.clone());
    let other_pem = zimmer_jwt::generate_ed25519_pem().unwrap();
    let stolen_kid = jsonwebtoken::encode(
        &header,
        &claims(r.user_id, sid),
        &EncodingKey::from_ed_pem(other_pem.as_bytes()).unwrap(),
    )
    .unwrap();

    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&serde_json::to_value(claims(r.user_id, sid)).unwrap())
    );

    // HS256 keyed with the public key, the classic algorithm confusion.
    let public_pem = zimmer_jwt::public_pem_from_private_pem(&ctx.key_pem).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(ctx.signer.jwk().kid.clone());
    let hs_with_public = jsonwebtoken::encode(
        &hs_header,
        &claims(r.user_id, sid),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let hs_with_x = jsonwebtoken::encode(
        &hs_header,
        &claims(r.user_id, sid),
        &EncodingKey::from_secret(ctx.signer.jwk().x.as_bytes()),
    )
    .unwrap();

    let mut expired = claims(r.user_id, sid);
    expired.iat -= 3600;
    expired.exp = Utc::now().timestamp() - 60;
    let expired = ctx.signer.sign(&expired).unwrap();

    let mut wrong_aud = claims(r.user_id, sid);
    wrong_aud.aud = "someone-else".into();
    let wrong_aud = ctx.signer.sign(&wrong_aud).unwrap();

    let mut wrong_iss = claims(r.user_id, sid);
    wrong_iss.iss = "evil-issuer".into();
    let wrong_iss = ctx.signer.sign(&wrong_iss).unwrap();

    // The payload of a real token with the role raised: the signature no longer matches.
    let parts: Vec<&str> = good.split('.').collect();
    let mut raised: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    raised["role"] = json!("manager");
    let tampered = format!("{}.{}.{}", parts[0], b64(&raised), parts[2]);

    let cases = [
        ("another key", other_key),
        ("the real kid, another key", stolen_kid),
        ("alg none", none),
        ("HS256 with the public key PEM", hs_with_public),
        ("HS256 with the public key bytes", hs_with_x),
        ("expired", expired),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
        ("tampered payload", tampered),
        ("garbage", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in &cases {
        let a = auth
            .get("/api/me")
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .await;
        assert_eq!(
            a.status(),
            StatusCode::UNAUTHORIZED,
            "auth accepted: {what}"
        );
        let body: Value = a.json().await.unwrap();
        assert!(body["detail"].is_string(), "{what}");
        assert_eq!(
            market_status(&market, token).await,
            StatusCode::UNAUTHORIZED,
            "marketplace accepted: {what}"
        );
    }
    // The control: a well-formed token of the real key is accepted by both.
    assert_eq!(me_status(&auth, &good).await, StatusCode::OK);
    let m = market
        .get("/api/user/automations")
        .bearer_auth(&good)
        .call_expecting(StatusCode::OK)
        .await;
    assert_eq!(m.json::<Value>().await.unwrap(), json!([]));
}
