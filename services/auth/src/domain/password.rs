//! Password hashing with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane). Hashing
//! costs tens of milliseconds of CPU, so it runs on blocking threads behind a semaphore sized
//! to the cores: the async workers keep serving, and a login flood queues instead of
//! spawning unbounded threads.

use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
use zimmer_http::ApiError;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the email is unknown so that
    /// "no such user" takes as long as "wrong password".
    dummy_hash: Arc<OnceLock<String>>,
}

fn argon2() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: Arc::new(OnceLock::new()),
        }
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("hasher closed: {e}")))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("hash task failed: {e}")))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        self.blocking(move || {
            argon2()?
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| ApiError::internal(anyhow::anyhow!("hashing failed: {e}")))
        })
        .await
    }

    /// True when `password` matches `hash` (a PHC string; its own parameters are used).
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, ApiError> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.blocking(move || {
            Ok(argon2()?
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok())
        })
        .await
    }

    /// Burns the same time as a real verify, for unknown accounts.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), ApiError> {
        let hash = match self.dummy_hash.get() {
            Some(h) => h.clone(),
            None => {
                let h = self.hash(&crate::domain::tokens::random_token(24)).await?;
                self.dummy_hash.get_or_init(|| h).clone()
            }
        };
        self.verify(password, &hash).await.map(drop)
    }
}

/// Checks a new password: 8–128 characters (never truncated) and not a well-known one.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err("must be at least 8 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err("must be at most 128 characters");
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|p| p == lowered) {
        return Err("is too common; choose another");
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Err("is too simple; choose another");
    }
    Ok(())
}

/// Passwords of 8+ characters from public breach top lists.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("password").is_err());
        assert!(check_new_password("Password123").is_err());
        assert!(check_new_password("aaaaaaaaaa").is_err());
        assert!(check_new_password(&"x".repeat(129)).is_err());
        assert!(check_new_password("correct horse battery").is_ok());
        assert!(check_new_password("رمز عبور قوی من").is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new();
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse battery", &hash).await.unwrap());
        assert!(!h.verify("wrong horse battery", &hash).await.unwrap());
        assert!(!h.verify("x", "not a phc string").await.unwrap());
        h.verify_dummy("anything").await.unwrap();
    }
}
