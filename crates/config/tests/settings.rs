//! Loading settings: `APP_ENV` is explicit, internal credentials are per service and never
//! development values in production, and secrets can come from files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zimmer_config::{
    AppEnv, DEV_INTERNAL_TOKEN, Env, InternalCallers, Settings, dev_internal_token,
    internal_caller_entry,
};

fn err(service: &'static str, env: Env) -> String {
    match Settings::load(service, env) {
        Ok(_) => panic!("settings should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unset_app_env_is_a_clear_error_for_the_process_environment() {
    // What `Env::process()` does: APP_ENV is required, no development default.
    let e = err(
        "auth",
        Env::from_pairs([("DATABASE_URL", "postgres://x@db/x")]).requiring_app_env(),
    );
    assert!(e.contains("APP_ENV is not set"), "{e}");
    assert!(e.contains("APP_ENV=production"), "{e}");
    // Empty counts as unset.
    let e = err(
        "auth",
        Env::from_pairs([("APP_ENV", "")]).requiring_app_env(),
    );
    assert!(e.contains("APP_ENV is not set"), "{e}");
    let e = err(
        "auth",
        Env::from_pairs([("APP_ENV", "staging")]).requiring_app_env(),
    );
    assert!(e.contains("development or production"), "{e}");

    let dev = Settings::load(
        "auth",
        Env::from_pairs([("APP_ENV", "development")]).requiring_app_env(),
    )
    .unwrap();
    assert_eq!(dev.app_env, AppEnv::Development);
    let prod = Settings::load(
        "auth",
        Env::from_pairs([
            ("APP_ENV", "production"),
            ("INTERNAL_API_TOKEN", "a-real-token"),
        ])
        .requiring_app_env(),
    )
    .unwrap();
    assert!(prod.is_production());
}

#[test]
fn development_gives_each_service_its_own_credential_known_to_the_others() {
    let admin = Settings::load("admin", Env::from_pairs([("APP_ENV", "development")])).unwrap();
    let auth = Settings::load("auth", Env::from_pairs([("APP_ENV", "development")])).unwrap();
    assert_eq!(admin.internal_token.expose(), DEV_INTERNAL_TOKEN);
    assert_eq!(auth.internal_token.expose(), dev_internal_token("auth"));
    assert_ne!(admin.internal_token, auth.internal_token);
    // The callee tells the callers apart by their credentials.
    let marketplace_token = dev_internal_token("marketplace");
    assert_eq!(
        auth.internal_callers
            .identify(DEV_INTERNAL_TOKEN.as_bytes()),
        Some("admin")
    );
    assert_eq!(
        auth.internal_callers.identify(marketplace_token.as_bytes()),
        Some("marketplace")
    );
    assert_eq!(auth.internal_callers.identify(b"guess"), None);
    assert_eq!(auth.internal_callers.identify(b""), None);
    // Debug shows the names only.
    let printed = format!("{auth:?}");
    assert!(!printed.contains(DEV_INTERNAL_TOKEN), "{printed}");
}

#[test]
fn internal_callers_are_parsed_and_checked() {
    let raw = format!(
        "{}, {}",
        internal_caller_entry("admin", "token-a"),
        internal_caller_entry("billing", "token-b")
    );
    let callers = InternalCallers::parse(&raw).unwrap();
    assert_eq!(callers.identify(b"token-a"), Some("admin"));
    assert_eq!(callers.identify(b"token-b"), Some("billing"));
    assert_eq!(callers.identify(b"token-c"), None);
    assert_eq!(callers.names().collect::<Vec<_>>(), ["admin", "billing"]);
    // `none`: a service nobody calls accepts no credential, not even development ones.
    let s = Settings::load("admin", Env::from_pairs([("INTERNAL_CALLERS", "none")])).unwrap();
    assert!(s.internal_callers.is_empty());
    assert_eq!(
        s.internal_callers.identify(DEV_INTERNAL_TOKEN.as_bytes()),
        None
    );

    for bad in [
        "admin".to_owned(),
        "admin:xyz".to_owned(),
        format!("bad name:{}", "0".repeat(64)),
        // Two callers with one credential: the callee could not tell them apart.
        format!(
            "{},{}",
            internal_caller_entry("admin", "same"),
            internal_caller_entry("billing", "same")
        ),
        format!(
            "{},{}",
            internal_caller_entry("admin", "a"),
            internal_caller_entry("admin", "b")
        ),
    ] {
        let e = err(
            "auth",
            Env::from_pairs([("INTERNAL_CALLERS", bad.as_str())]),
        );
        assert!(e.contains("INTERNAL_CALLERS"), "{bad}: {e}");
    }
}

#[test]
fn production_refuses_development_and_placeholder_credentials() {
    let prod = |pairs: &[(&str, &str)]| {
        let mut env = Env::from_pairs([("APP_ENV", "production")]);
        for (k, v) in pairs {
            env.set(*k, *v);
        }
        Settings::load("auth", env)
    };
    let e = prod(&[]).unwrap_err().to_string();
    assert!(e.contains("INTERNAL_API_TOKEN must be set"), "{e}");
    for dev in [
        DEV_INTERNAL_TOKEN,
        "dev-internal-token-change-me",
        "compose-internal-token-change-me",
        "CHANGE-ME-openssl-rand-hex-32",
    ] {
        let e = prod(&[("INTERNAL_API_TOKEN", dev)])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("development or placeholder"), "{dev}: {e}");
    }
    // A callee must not accept a development credential either.
    let callers = format!(
        "{},{}",
        internal_caller_entry("admin", &"a".repeat(64)),
        internal_caller_entry("billing", &dev_internal_token("billing"))
    );
    let e = prod(&[
        ("INTERNAL_API_TOKEN", &"t".repeat(64)),
        ("INTERNAL_CALLERS", &callers),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("development credential of billing"), "{e}");

    // Production without INTERNAL_CALLERS accepts nobody.
    let s = prod(&[("INTERNAL_API_TOKEN", &"t".repeat(64))]).unwrap();
    assert!(s.internal_callers.is_empty());
    assert_eq!(
        s.internal_callers.identify(DEV_INTERNAL_TOKEN.as_bytes()),
        None
    );
}

#[test]
fn secrets_can_be_read_from_files() {
    let dir = std::env::temp_dir().join(format!("zimmer-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    let callers = dir.join("callers");
    let key = dir.join("key");
    std::fs::write(&token, "file-token\n").unwrap();
    std::fs::write(
        &callers,
        internal_caller_entry("admin", "from-a-file") + "\n",
    )
    .unwrap();
    std::fs::write(&key, "a2V5\n").unwrap();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let s = Settings::load(
        "billing",
        Env::from_pairs([
            ("INTERNAL_API_TOKEN_FILE", path(&token)),
            ("INTERNAL_CALLERS_FILE", path(&callers)),
            ("SOME_ENCRYPTION_KEY_FILE", path(&key)),
        ]),
    )
    .unwrap();
    assert_eq!(s.internal_token.expose(), "file-token");
    assert_eq!(s.internal_callers.identify(b"from-a-file"), Some("admin"));
    assert_eq!(s.env.get("SOME_ENCRYPTION_KEY").as_deref(), Some("a2V5"));

    // A missing or empty file is an error, not a silent development default.
    let e = err(
        "billing",
        Env::from_pairs([("INTERNAL_API_TOKEN_FILE", path(&dir.join("missing")))]),
    );
    assert!(e.contains("INTERNAL_API_TOKEN_FILE"), "{e}");
    std::fs::write(&token, "\n").unwrap();
    let e = err(
        "billing",
        Env::from_pairs([("INTERNAL_API_TOKEN_FILE", path(&token))]),
    );
    assert!(e.contains("empty"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
