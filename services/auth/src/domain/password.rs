//! Password rules and argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane): what a new
//! password must be, and one hash or verification on the calling thread into caller-provided
//! memory. Pure CPU work, no I/O; auth runs it on its own pool of hashing threads
//! (`workers/hashing.rs`), never on a request's thread.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{
        self,
        phc::{Output, ParamsString, PasswordHash, Salt},
    },
};
use zimmer_http::ApiError;

pub use argon2::Block;

pub(crate) const MEMORY_KIB: u32 = 19 * 1024;
pub(crate) const PASSES: u32 = 2;
pub(crate) const LANES: u32 = 1;
const OUTPUT_LEN: usize = 32;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

fn params() -> Result<Params, ApiError> {
    Params::new(MEMORY_KIB, PASSES, LANES, Some(OUTPUT_LEN))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("argon2 params: {e}")))
}
/// Runs argon2 into `blocks`, growing it to what `argon` needs (only a stored hash with
/// larger parameters than ours makes it grow past 19 MiB).
fn hash_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut Vec<Block>,
) -> argon2::Result<()> {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    argon.hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice())
}
/// One production hash on the calling thread into reusable memory `blocks` (what a hashing
/// thread runs; `bench/tools` measures argon2id's own rate with it).
pub fn hash_with(password: &[u8], blocks: &mut Vec<Block>) -> Result<String, ApiError> {
    let fail =
        |e: &dyn std::fmt::Display| ApiError::internal(anyhow::anyhow!("hashing failed: {e}"));
    let params = params()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = password_hash::try_generate_salt().map_err(|e| fail(&e))?;
    let mut out = [0u8; OUTPUT_LEN];
    hash_into(&argon, &params, password, &salt, &mut out, blocks).map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the PHC string's own algorithm, version and parameters and
/// compares in constant time (`Output`'s equality); anything unparsable is a mismatch.
pub fn verify_with(password: &[u8], hash: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    if hash_into(&argon, &params, password, salt, out, blocks).is_err() {
        return false;
    }
    Output::new(out).is_ok_and(|computed| computed == *expected)
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
}
