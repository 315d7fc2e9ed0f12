//! Service-to-service credentials for the `/internal/...` APIs.
//!
//! Each service has its own credential (`INTERNAL_API_TOKEN`), which it presents as
//! `X-Internal-Token` when it calls another service. A callee knows its callers by name and
//! by the SHA-256 of their credentials (`INTERNAL_CALLERS=admin:<hex>,marketplace:<hex>`),
//! so it can tell *which* service calls, and a callee that leaks its configuration leaks no
//! credential it could replay against a third service.

use std::fmt;

use aws_lc_rs::digest;

use crate::ConfigError;

/// The services of the platform, in the order the development defaults list them.
pub const SERVICES: [&str; 5] = ["auth", "marketplace", "billing", "support", "admin"];

/// The deterministic development credential of `service`: local starts and tests work
/// without configuration, and production refuses every value of this form.
pub fn dev_internal_token(service: &str) -> String {
    format!("{DEV_TOKEN_PREFIX}{service}")
}

pub(crate) const DEV_TOKEN_PREFIX: &str = "dev-internal-token-";

/// The admin service's development credential: what tests present when they call an
/// `/internal/...` route as the admin service would.
pub const DEV_INTERNAL_TOKEN: &str = "dev-internal-token-admin";

/// Lower-case hex SHA-256 of a credential: the form `INTERNAL_CALLERS` lists
/// (`printf %s "$TOKEN" | sha256sum`).
pub fn internal_token_digest(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// One `INTERNAL_CALLERS` entry, `name:<sha256 hex>`, for the caller `name` holding `token`.
pub fn internal_caller_entry(name: &str, token: &str) -> String {
    format!("{name}:{}", internal_token_digest(token))
}

/// Whether a credential is a development or placeholder value production must refuse.
pub fn is_default_credential(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    token.trim().is_empty() || lower.starts_with(DEV_TOKEN_PREFIX) || lower.contains("change-me")
}

/// The services allowed to call this one, each known by the digest of its credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InternalCallers {
    entries: Vec<(String, [u8; 32])>,
}

/// Only the names.
impl fmt::Debug for InternalCallers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl InternalCallers {
    /// `name:<64 hex>` entries separated by commas or whitespace; `none`: no caller at all.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        if raw.trim().eq_ignore_ascii_case("none") {
            return Ok(Self { entries });
        }
        for item in raw
            .split([',', ' ', '\n', '\t', '\r'])
            .filter(|s| !s.is_empty())
        {
            let bad = || {
                ConfigError(
                    "INTERNAL_CALLERS must list name:<sha256 hex of the caller's token> entries"
                        .into(),
                )
            };
            let (name, hexed) = item.split_once(':').ok_or_else(bad)?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad());
            }
            let digest = unhex32(hexed.trim()).ok_or_else(bad)?;
            if entries.iter().any(|(n, _)| n == name) {
                return Err(ConfigError(format!("INTERNAL_CALLERS lists {name} twice")));
            }
            if entries.iter().any(|(_, d)| *d == digest) {
                return Err(ConfigError(format!(
                    "INTERNAL_CALLERS: {name} has the same credential as another caller; each \
                     service needs its own"
                )));
            }
            entries.push((name.to_owned(), digest));
        }
        Ok(Self { entries })
    }

    /// Every platform service with its development credential (the development default).
    pub fn development() -> Self {
        Self {
            entries: SERVICES
                .iter()
                .map(|s| (s.to_string(), sha256(dev_internal_token(s).as_bytes())))
                .collect(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller whose credential this is. Every entry is compared, in constant time, so
    /// the answer's timing says nothing about which entry (or how much of it) matched.
    pub fn identify(&self, presented: &[u8]) -> Option<&str> {
        if presented.is_empty() {
            return None;
        }
        let presented = sha256(presented);
        let mut found = None;
        for (name, digest) in &self.entries {
            if constant_time_eq(&presented, digest) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// The first caller whose credential is a development one, if any.
    pub(crate) fn dev_credential(&self) -> Option<&str> {
        let dev = Self::development();
        self.entries
            .iter()
            .find(|(_, d)| dev.entries.iter().any(|(_, dd)| dd == d))
            .map(|(n, _)| n.as_str())
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Compares in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn digest_matches_sha256sum() {
        // printf %s abc | sha256sum
        assert_eq!(
            internal_token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(DEV_INTERNAL_TOKEN, dev_internal_token("admin"));
    }
}
