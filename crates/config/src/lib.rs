//! Configuration from environment variables (12-factor), with defaults that work for local
//! development. Each service builds one [`Settings`] at start and passes it down; there is no
//! global singleton, so tests can run many differently configured apps in one process.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

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
}

/// Only the names: values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.overrides.keys().collect();
        keys.sort();
        f.debug_struct("Env")
            .field("overridden", &keys)
            .field("use_process_env", &self.use_process_env)
            .finish()
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            overrides: HashMap::new(),
            use_process_env: true,
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
        }
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
    pub internal_token: Secret,
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

pub const DEV_INTERNAL_TOKEN: &str = "dev-internal-token-change-me";

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

    pub fn load(service: &'static str, env: Env) -> Result<Self, ConfigError> {
        let app_env = match env.string("APP_ENV", "development").as_str() {
            "production" | "prod" => AppEnv::Production,
            "development" | "dev" | "test" | "local" => AppEnv::Development,
            _ => {
                return Err(ConfigError(
                    "APP_ENV must be development or production".into(),
                ));
            }
        };
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
        let internal_token = Secret::new(env.string("INTERNAL_API_TOKEN", DEV_INTERNAL_TOKEN));
        if app_env == AppEnv::Production && internal_token.expose() == DEV_INTERNAL_TOKEN {
            return Err(ConfigError(
                "INTERNAL_API_TOKEN must be set in production".into(),
            ));
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
