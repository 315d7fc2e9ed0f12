//! Outside the local scripts and the test kit, `APP_ENV` must be given: a container or unit
//! started without it refuses to start instead of running with development credentials.
//! Needs the binary: `cargo build -p zimmer-auth --bins`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use zimmer_testkit::{TestContext, binary_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_to_start_without_app_env() {
    let ctx = TestContext::new().await;
    let env: Vec<(String, String)> = ctx
        .env_pairs()
        .into_iter()
        .filter(|(k, _)| k != "APP_ENV")
        .collect();
    let out = Command::new(binary_path("zimmer-auth"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("APP_ENV is not set"), "{stderr}");

    // Production with the development credentials does not start either.
    let out = Command::new(binary_path("zimmer-auth"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("APP_ENV", "production")
        .env(
            "INTERNAL_API_TOKEN",
            zimmer_config::dev_internal_token("auth"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INTERNAL_API_TOKEN"), "{stderr}");
}
