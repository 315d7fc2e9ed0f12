//! Configuration from environment variables (12-factor), with defaults that work for local
//! development. Each service builds one [`Settings`] at start and passes it down; there is no
//! global singleton, so tests can run many differently configured apps in one process.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

pub mod backoff;
mod internal;

pub use backoff::Backoff;

pub use internal::{
    DEV_INTERNAL_TOKEN, InternalCallers, SERVICES, constant_time_eq, dev_internal_token,
    internal_caller_entry, internal_token_digest, is_default_credential,
};

/// A secret value: `Debug` and `Display` never show it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Where settings come from: the process environment, or a map (tests).
#[derive(Clone, Default)]
pub struct Env {
    overrides: HashMap<String, String>,
    use_process_env: bool,
    /// `APP_ENV` must be given (no development default): true for the process environment,
    /// so a container or a unit started without it refuses to start instead of running
    /// with development credentials. A map (tests, tools) defaults to development.
    require_app_env: bool,
}

/// Only the names: values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.overrides.keys().collect();
        keys.sort();
        f.debug_struct("Env")
            .field("overridden", &keys)
            .field("use_process_env", &self.use_process_env)
            .field("require_app_env", &self.require_app_env)
            .finish()
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            overrides: HashMap::new(),
            use_process_env: true,
            require_app_env: true,
        }
    }

    /// Only the given values (defaults fill the rest); the process environment is ignored.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            overrides: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            use_process_env: false,
            require_app_env: false,
        }
    }

    /// Makes `APP_ENV` mandatory, as it is for the process environment.
    pub fn requiring_app_env(mut self) -> Self {
        self.require_app_env = true;
        self
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.overrides.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(key) {
            return Some(v.clone());
        }
        if self.use_process_env {
            return std::env::var(key).ok().filter(|v| !v.is_empty());
        }
        None
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_owned())
    }

    pub fn parse<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{key} has an invalid value"))),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(_) => Err(ConfigError(format!("{key} must be true or false"))),
        }
    }

    pub fn list(&self, key: &str, default: &str) -> Vec<String> {
        self.string(key, default)
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub pool_size: usize,
    pub wait_timeout: Duration,
    pub statement_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct AmqpSettings {
    pub url: Secret,
    /// The topic exchange every event goes through; tests use their own name.
    pub exchange: String,
    /// Test mode: exchanges auto-delete and queues expire when unused, so parallel test runs
    /// leave nothing behind in the broker.
    pub transient: bool,
}

impl AmqpSettings {
    pub fn dead_letter_exchange(&self) -> String {
        // `zimmer.events` → `zimmer.dlx`, and a test's `t123.events` → `t123.dlx`.
        match self.exchange.strip_suffix(".events") {
            Some(prefix) => format!("{prefix}.dlx"),
            None => format!("{}.dlx", self.exchange),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// PEM of the Ed25519 signing key (auth only).
    pub private_key_pem: Option<Secret>,
    /// PEM of a public key to verify with, instead of fetching the JWKS.
    pub public_key_pem: Option<String>,
    pub jwks_url: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub service: &'static str,
    pub app_env: AppEnv,
    pub http_host: String,
    pub http_port: u16,
    /// Largest JSON body a handler accepts; larger ones get 413.
    pub json_limit: usize,
    pub database: DatabaseSettings,
    pub redis_url: Secret,
    pub amqp: AmqpSettings,
    pub jwt: JwtSettings,
    pub cors_origins: Vec<String>,
    pub cookie_secure: bool,
    /// This service's own credential, presented as `X-Internal-Token` when it calls another
    /// service's `/internal/...` API (`INTERNAL_API_TOKEN`).
    pub internal_token: Secret,
    /// The services that may call this one's `/internal/...` API (`INTERNAL_CALLERS`).
    pub internal_callers: InternalCallers,
    pub auth_internal_url: String,
    pub marketplace_internal_url: String,
    pub billing_internal_url: String,
    pub support_internal_url: String,
    pub frontend_url: String,
    pub otlp_endpoint: Option<String>,
    pub log_json: bool,
    /// Everything else, for service-specific settings read with [`Env`].
    pub env: Env,
}

/// Secrets that may also be given as a file, `NAME_FILE=/path` (Docker and Kubernetes
/// secrets): read at start, a trailing newline dropped. Every `*_ENCRYPTION_KEY` may too.
pub const SECRET_FILE_VARS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "AMQP_URL",
    "INTERNAL_API_TOKEN",
    "INTERNAL_CALLERS",
    "SMTP_URL",
    "ZARINPAL_MERCHANT_ID",
    "DEMO_MANAGER_PASSWORD",
    "DEMO_SERVICE_TOKEN",
];

/// Replaces each `NAME_FILE` of a secret by the file's content as `NAME` (unless `NAME` is
/// set itself). An unreadable or empty file is an error: starting with a development
/// default instead would hide the mistake.
fn resolve_secret_files(env: &mut Env) -> Result<(), ConfigError> {
    let mut names: Vec<String> = SECRET_FILE_VARS.iter().map(|s| s.to_string()).collect();
    let mut keys: Vec<String> = env.overrides.keys().cloned().collect();
    if env.use_process_env {
        keys.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
    }
    for k in keys {
        if let Some(name) = k.strip_suffix("_FILE")
            && name.ends_with("_ENCRYPTION_KEY")
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    for name in names {
        if env.get(&name).is_some() {
            continue;
        }
        let file_var = format!("{name}_FILE");
        let Some(path) = env.get(&file_var) else {
            continue;
        };
        let value = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("{file_var}: cannot read {path}: {e}")))?;
        let value = value.trim_end_matches(['\n', '\r']);
        if value.trim().is_empty() {
            return Err(ConfigError(format!("{file_var}: {path} is empty")));
        }
        env.set(name, value);
    }
    Ok(())
}

/// The local port each service listens on by default.
pub fn default_port(service: &str) -> u16 {
    match service {
        "auth" => 8001,
        "marketplace" => 8002,
        "billing" => 8003,
        "support" => 8004,
        "admin" => 8005,
        _ => 8000,
    }
}

impl Settings {
    pub fn from_process_env(service: &'static str) -> Result<Self, ConfigError> {
        Self::load(service, Env::process())
    }

    pub fn load(service: &'static str, mut env: Env) -> Result<Self, ConfigError> {
        let app_env = match env
            .get("APP_ENV")
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None if env.require_app_env => {
                return Err(ConfigError(
                    "APP_ENV is not set: set APP_ENV=production (or APP_ENV=development for \
                     local work; scripts/start.sh and the test kit set it)"
                        .into(),
                ));
            }
            None => AppEnv::Development,
            Some("production" | "prod") => AppEnv::Production,
            Some("development" | "dev" | "test" | "local") => AppEnv::Development,
            Some(_) => {
                return Err(ConfigError(
                    "APP_ENV must be development or production".into(),
                ));
            }
        };
        resolve_secret_files(&mut env)?;
        let read_file = |key: &str| -> Result<Option<String>, ConfigError> {
            match env.get(key) {
                None => Ok(None),
                Some(path) => std::fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|e| ConfigError(format!("{key}: cannot read {path}: {e}"))),
            }
        };
        // Only auth signs; another service never reads (or needs) the private key.
        let private_key_pem = if service == "auth" {
            match env.get("JWT_PRIVATE_KEY") {
                Some(pem) => Some(pem),
                None => read_file("JWT_PRIVATE_KEY_FILE")?,
            }
            .map(Secret::new)
        } else {
            None
        };
        let public_key_pem = match env.get("JWT_PUBLIC_KEY") {
            Some(pem) => Some(pem),
            None => read_file("JWT_PUBLIC_KEY_FILE")?,
        };
        let production = app_env == AppEnv::Production;
        let internal_token = match env.get("INTERNAL_API_TOKEN") {
            Some(t) if production && is_default_credential(&t) => {
                return Err(ConfigError(
                    "INTERNAL_API_TOKEN is a development or placeholder value; production \
                     needs this service's own random credential"
                        .into(),
                ));
            }
            Some(t) => Secret::new(t.trim()),
            None if production => {
                return Err(ConfigError(
                    "INTERNAL_API_TOKEN must be set in production (this service's own \
                     credential for other services' /internal APIs)"
                        .into(),
                ));
            }
            None => Secret::new(dev_internal_token(service)),
        };
        // Production without INTERNAL_CALLERS accepts no internal call at all.
        let internal_callers = match env.get("INTERNAL_CALLERS") {
            Some(raw) => InternalCallers::parse(&raw)?,
            None if production => InternalCallers::default(),
            None => InternalCallers::development(),
        };
        if production && let Some(name) = internal_callers.dev_credential() {
            return Err(ConfigError(format!(
                "INTERNAL_CALLERS accepts the development credential of {name} in production"
            )));
        }
        let pool_size: usize = env.parse("DATABASE_POOL_SIZE", 10)?;
        let settings = Self {
            service,
            app_env,
            http_host: env.string("HTTP_HOST", "127.0.0.1"),
            http_port: env.parse("HTTP_PORT", default_port(service))?,
            json_limit: env.parse("JSON_BODY_LIMIT", 64 * 1024)?,
            database: DatabaseSettings {
                url: Secret::new(env.string(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/zimmer",
                )),
                // A pool of 1 deadlocks as soon as anything nests; never go below 2.
                pool_size: pool_size.max(2),
                wait_timeout: Duration::from_millis(env.parse("DATABASE_WAIT_TIMEOUT_MS", 5000)?),
                statement_timeout: Duration::from_millis(
                    env.parse("DATABASE_STATEMENT_TIMEOUT_MS", 15_000)?,
                ),
            },
            redis_url: Secret::new(env.string("REDIS_URL", "redis://127.0.0.1:6379")),
            amqp: AmqpSettings {
                url: Secret::new(env.string(
                    "AMQP_URL",
                    "amqp://guest:guest@127.0.0.1:5672/%2f",
                )),
                exchange: env.string("AMQP_EXCHANGE", "zimmer.events"),
                transient: env.bool("AMQP_TRANSIENT", false)?,
            },
            jwt: JwtSettings {
                issuer: env.string("JWT_ISSUER", "zimmer-auth"),
                audience: env.string("JWT_AUDIENCE", "zimmer"),
                access_ttl: Duration::from_secs(env.parse("JWT_ACCESS_TTL_SECS", 15 * 60)?),
                refresh_ttl: Duration::from_secs(
                    env.parse("JWT_REFRESH_TTL_SECS", 30 * 24 * 3600)?,
                ),
                private_key_pem,
                public_key_pem,
                jwks_url: env.string(
                    "JWKS_URL",
                    "http://127.0.0.1:8001/.well-known/jwks.json",
                ),
            },
            cors_origins: env.list(
                "CORS_ORIGINS",
                "http://localhost:3000,http://localhost:3001,http://127.0.0.1:3000,http://127.0.0.1:3001",
            ),
            cookie_secure: env.bool("COOKIE_SECURE", true)?,
            internal_token,
            internal_callers,
            auth_internal_url: env.string("AUTH_INTERNAL_URL", "http://127.0.0.1:8001"),
            marketplace_internal_url: env
                .string("MARKETPLACE_INTERNAL_URL", "http://127.0.0.1:8002"),
            billing_internal_url: env.string("BILLING_INTERNAL_URL", "http://127.0.0.1:8003"),
            support_internal_url: env.string("SUPPORT_INTERNAL_URL", "http://127.0.0.1:8004"),
            frontend_url: env.string("FRONTEND_URL", "http://localhost:3000"),
            otlp_endpoint: env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            log_json: env.string("LOG_FORMAT", "json") != "pretty",
            env,
        };
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let s = Settings::load(
            "auth",
            Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@db/x")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(s.http_port, 8001);
    }

    #[test]
    fn pool_never_below_two_and_bad_values_rejected() {
        let s = Settings::load("billing", Env::from_pairs([("DATABASE_POOL_SIZE", "1")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.database.pool_size, 2);
        assert!(Settings::load("billing", Env::from_pairs([("HTTP_PORT", "x")])).is_err());
        assert!(Settings::load("billing", Env::from_pairs([("APP_ENV", "production")])).is_err());
    }

    #[test]
    fn dead_letter_exchange_follows_the_exchange_name() {
        let s = Settings::load("auth", Env::from_pairs([("AMQP_EXCHANGE", "t1.events")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.amqp.dead_letter_exchange(), "t1.dlx");
    }
}
