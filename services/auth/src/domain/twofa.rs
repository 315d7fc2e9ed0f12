//! TOTP two-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of clock
//! skew), recovery codes, and the short-lived signed challenge a login answers with when 2FA
//! is on.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder, Totp};

use super::secrets::Secrets;

pub const SECRET_BYTES: usize = 20;
pub const STEP_SECS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;
/// How long a login challenge stays valid.
pub const CHALLENGE_TTL_SECS: i64 = 300;
/// A used code's step stays marked this long: the step can match for at most
/// (skew + 1) steps after it began, i.e. 60 s; the margin covers clock differences between
/// auth replicas.
pub const REPLAY_GUARD_SECS: u64 = 150;

fn fill(buf: &mut [u8]) {
    // The system RNG failing is not something to serve requests through.
    if SystemRandom::new().fill(buf).is_err() {
        std::process::abort();
    }
}

/// A new random TOTP secret (160 bits, RFC 4226's recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut buf = vec![0u8; SECRET_BYTES];
    fill(&mut buf);
    buf
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> anyhow::Result<Totp> {
    // The otpauth label separates issuer and account with ':'; neither may contain one.
    let account = account.replace(':', "_");
    let issuer = issuer.replace(':', "_");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| anyhow::anyhow!("totp: {e}"))
}

/// The base32 secret (for manual entry) and the `otpauth://` URI (for a QR code).
pub fn provisioning(
    secret: &[u8],
    issuer: &str,
    account: &str,
) -> anyhow::Result<(String, String)> {
    let t = totp(secret, issuer, account)?;
    let uri = t
        .to_url()
        .map_err(|e| anyhow::anyhow!("otpauth uri: {e}"))?;
    Ok((t.secret().to_base32(), uri))
}

/// The time step `code` matches at `now` (within the skew), if any. The caller makes sure
/// each step is accepted once.
pub fn matching_step(secret: &[u8], code: &str, now_unix: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "x", "x").ok()?.check(&code, now_unix)
}

/// The code of `secret` at `unix` (tests and tools).
pub fn code_at(secret: &[u8], unix: u64) -> anyhow::Result<String> {
    Ok(totp(secret, "x", "x")?.generate(unix).to_string())
}

/// Crockford's base32 alphabet (no i, l, o, u): easy to read back from paper.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Ten new recovery codes, each 50 random bits shown as `xxxxx-xxxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; 10];
            fill(&mut raw);
            let chars: String = raw
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The canonical form of a typed recovery code: case, dashes and spaces ignored, and the
/// look-alikes Crockford maps (i/l → 1, o → 0).
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(10);
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        let mapped = match c {
            '-' | ' ' | '\t' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(mapped);
        if out.len() > 10 {
            return None;
        }
    }
    (out.len() == 10).then_some(out)
}

/// What the database keeps of a recovery code: a keyed hash bound to the user.
pub fn recovery_code_hash(secrets: &Secrets, user_id: i64, normalized: &str) -> Vec<u8> {
    secrets.mac(
        "recovery-code",
        format!("{user_id}:{normalized}").as_bytes(),
    )
}

/// The signed login challenge: who passed the password check, until when, and a fingerprint
/// of the password hash they passed it against (a password reset or change voids it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pub uid: i64,
    pub exp: i64,
    /// Random id: the challenge is single use.
    pub nonce: String,
    pub pwf: String,
}

pub fn password_fingerprint(secrets: &Secrets, password_hash: &str) -> String {
    URL_SAFE_NO_PAD.encode(&secrets.mac("password-fingerprint", password_hash.as_bytes())[..12])
}

const CHALLENGE_PURPOSE: &str = "2fa-challenge";

pub fn sign_challenge(secrets: &Secrets, challenge: &Challenge) -> anyhow::Result<String> {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(challenge)?);
    let tag = URL_SAFE_NO_PAD.encode(secrets.mac(CHALLENGE_PURPOSE, payload.as_bytes()));
    Ok(format!("{payload}.{tag}"))
}

/// The challenge if the signature holds and it has not expired.
pub fn open_challenge(secrets: &Secrets, token: &str, now_unix: i64) -> Option<Challenge> {
    if token.len() > 1024 {
        return None;
    }
    let (payload, tag) = token.trim().split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !secrets.mac_matches(CHALLENGE_PURPOSE, payload.as_bytes(), &tag) {
        return None;
    }
    let challenge: Challenge =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (challenge.exp > now_unix).then_some(challenge)
}

pub fn new_challenge(
    secrets: &Secrets,
    user_id: i64,
    password_hash: &str,
    now_unix: i64,
) -> Challenge {
    let mut nonce = [0u8; 16];
    fill(&mut nonce);
    Challenge {
        uid: user_id,
        exp: now_unix + CHALLENGE_TTL_SECS,
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        pwf: password_fingerprint(secrets, password_hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed, truncated to 6 digits.
        let seed = b"12345678901234567890";
        assert_eq!(code_at(seed, 59).unwrap(), "287082");
        assert_eq!(code_at(seed, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(seed, 2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn codes_match_within_one_step_of_skew() {
        let s = new_secret();
        let now = 1_800_000_015;
        let code = code_at(&s, now).unwrap();
        assert_eq!(matching_step(&s, &code, now), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now - 30), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 90), None);
        assert_eq!(matching_step(&s, "12345", now), None);
        assert_eq!(matching_step(&s, "abcdef", now), None);
        assert_eq!(matching_step(&s, "' OR 1=1 --", now), None);
    }

    #[test]
    fn provisioning_uri_is_standard() {
        let (b32, uri) = provisioning(&[1u8; 20], "Zimmer", "a:b@example.com").unwrap();
        assert_eq!(b32.len(), 32);
        assert!(uri.starts_with("otpauth://totp/Zimmer:"), "{uri}");
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
        assert!(uri.contains("issuer=Zimmer"), "{uri}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalize() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut uniq = codes.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 11);
            let n = normalize_recovery_code(c).unwrap();
            assert_eq!(normalize_recovery_code(&c.to_uppercase()).unwrap(), n);
            assert_eq!(normalize_recovery_code(&n.replace('-', " ")).unwrap(), n);
        }
        assert_eq!(
            normalize_recovery_code("ILO00-abcde").as_deref(),
            Some("11000abcde")
        );
        assert!(normalize_recovery_code("short").is_none());
        assert!(normalize_recovery_code("abcde-abcde-a").is_none());
        assert!(normalize_recovery_code("abcde-abcd!").is_none());
    }

    #[test]
    fn challenges_are_signed_and_expire() {
        let s = Secrets::from_master(&[3u8; 32]).unwrap();
        let c = new_challenge(&s, 42, "$argon2id$hash", 1000);
        let token = sign_challenge(&s, &c).unwrap();
        let opened = open_challenge(&s, &token, 1001).unwrap();
        assert_eq!(opened.uid, 42);
        assert!(open_challenge(&s, &token, 1000 + CHALLENGE_TTL_SECS).is_none());
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Challenge {
                uid: 1,
                ..c.clone()
            })
            .unwrap(),
        );
        assert!(open_challenge(&s, &format!("{forged}.{tag}"), 1001).is_none());
        assert!(open_challenge(&s, payload, 1001).is_none());
        let other = Secrets::from_master(&[4u8; 32]).unwrap();
        assert!(open_challenge(&other, &token, 1001).is_none());
    }
}
