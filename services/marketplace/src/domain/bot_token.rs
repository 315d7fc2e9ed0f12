//! Telegram bot tokens: `<bot id>:<secret>` as BotFather issues them.

/// Trimmed and format-checked: 5–15 digits, a colon, 30–64 of `[A-Za-z0-9_-]`.
pub fn validate(input: &str) -> Result<String, &'static str> {
    let token = input.trim();
    let Some((id, secret)) = token.split_once(':') else {
        return Err("is not a Telegram bot token (expected <bot id>:<secret>)");
    };
    let id_ok = (5..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
    let secret_ok = (30..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id_ok && secret_ok {
        Ok(token.to_owned())
    } else {
        Err("is not a Telegram bot token (expected <bot id>:<secret>)")
    }
}

/// What the API shows: the bot id (public anyway) and the last 4 characters of the secret.
pub fn mask(token: &str) -> String {
    match token.split_once(':') {
        Some((id, secret)) if secret.len() > 4 => {
            format!("{id}:****{}", &secret[secret.len() - 4..])
        }
        _ => "****".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";

    #[test]
    fn accepts_real_shapes_and_refuses_others() {
        assert_eq!(validate(&format!("  {GOOD} ")), Ok(GOOD.to_owned()));
        assert!(validate("123456789").is_err());
        assert!(validate("abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ").is_err());
        assert!(validate("123456789:short").is_err());
        assert!(validate("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDs aw").is_err());
        assert!(validate("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ\u{202E}").is_err());
    }

    #[test]
    fn masks_all_but_the_bot_id_and_tail() {
        assert_eq!(mask(GOOD), "123456789:****sawQ");
        assert!(!mask(GOOD).contains("AAHdqTcv"));
    }
}
