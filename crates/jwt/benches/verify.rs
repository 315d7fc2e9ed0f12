//! JWT verification is on every authenticated request of every service: measure it.
//! `cargo bench -p zimmer-jwt` prints the cost of one verification plus revocation check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use uuid::Uuid;
use zimmer_config::{Env, Settings};
use zimmer_jwt::{Claims, Revocations, Role, Signer, Verifier};

fn main() {
    let pem = zimmer_jwt::generate_ed25519_pem().unwrap();
    let signer = Signer::from_pem(&pem).unwrap();
    let settings = Settings::load("bench", Env::from_pairs::<[(&str, &str); 0], _, _>([])).unwrap();
    let verifier = Verifier::from_signer(&signer, &settings.jwt).unwrap();
    let revocations = Revocations::new();
    // A realistic set: ten thousand revoked sessions in memory.
    for _ in 0..10_000 {
        revocations.revoke_session(Uuid::new_v4(), i64::MAX);
    }
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: "42".into(),
        role: Role::Customer,
        sid: Uuid::new_v4(),
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + 900,
        iss: settings.jwt.issuer.clone(),
        aud: settings.jwt.audience.clone(),
        auth_time: None,
    };
    let token = signer.sign(&claims).unwrap();

    let iterations = 20_000;
    // First sight of a token: the Ed25519 signature is checked (distinct tokens, so none is
    // remembered yet).
    let fresh: Vec<String> = (0..iterations)
        .map(|_| {
            signer
                .sign(&Claims {
                    jti: Uuid::new_v4(),
                    ..claims.clone()
                })
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    for t in &fresh {
        let c = verifier.verify(std::hint::black_box(t)).unwrap();
        assert!(!revocations.is_revoked(&c));
    }
    let per = started.elapsed() / iterations;
    println!(
        "first verification + revocation check: {per:?} per token ({:.0}/s on one core)",
        1.0 / per.as_secs_f64()
    );

    // The same token again (every request after a client's first): remembered claims.
    for _ in 0..1_000 {
        let c = verifier.verify(&token).unwrap();
        assert!(!revocations.is_revoked(&c));
    }
    let started = Instant::now();
    for _ in 0..iterations {
        let c = verifier.verify(std::hint::black_box(&token)).unwrap();
        assert!(!revocations.is_revoked(&c));
    }
    let per = started.elapsed() / iterations;
    println!(
        "known token + revocation check: {per:?} per token ({:.0}/s on one core)",
        1.0 / per.as_secs_f64()
    );

    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(signer.sign(&claims).unwrap());
    }
    let per = started.elapsed() / iterations;
    println!("sign: {per:?} per token");
}
