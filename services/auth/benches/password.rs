//! Login's cost is argon2id at OWASP parameters: measure one verify, and how many logins per
//! second the bounded hashing pool sustains with every core busy.
//! `cargo bench -p zimmer-auth --bench password`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use zimmer_auth::workers::hashing::PasswordHasher;

#[tokio::main]
async fn main() {
    let hasher = PasswordHasher::new();
    let hash = hasher.hash("correct horse battery staple").await.unwrap();
    assert!(
        hasher
            .verify("correct horse battery staple", &hash)
            .await
            .unwrap()
    );

    let n = 20;
    let started = Instant::now();
    for _ in 0..n {
        assert!(
            hasher
                .verify("correct horse battery staple", &hash)
                .await
                .unwrap()
        );
    }
    let single = started.elapsed() / n;
    println!("argon2id verify (19 MiB, t=2, p=1): {single:?} each, sequential");

    let concurrent = 64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrent)
        .map(|_| {
            let h = hasher.clone();
            let hash = hash.clone();
            tokio::spawn(async move {
                h.verify("correct horse battery staple", &hash)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{concurrent} concurrent logins through the bounded pool: {elapsed:?} → {:.1} verifies/s on {cores} cores",
        f64::from(concurrent) / elapsed.as_secs_f64()
    );
}
