//! OpenAI keys' pure rules: what of a key may be shown, and what of OpenAI's answer to a key
//! test may be passed on (docs/panels.md "OpenAI keys: per-automation limits and test").

/// The dashboard's `masked_key`: `sk-****` plus the last four characters.
pub fn masked_key(tail: &str) -> String {
    format!("sk-****{tail}")
}

/// At most this many characters of OpenAI's error message reach the dashboard.
const MAX_MESSAGE_CHARS: usize = 300;

/// OpenAI's error message made safe to show: the key itself, and every word that looks like a
/// key (OpenAI's 401 names it masked, `sk-ab***...wxyz`: still more than the last four
/// characters we show), become `[key]`; control characters are dropped; the length is bounded.
pub fn redact(message: &str, key: &str) -> String {
    let without_key = if key.is_empty() {
        message.to_owned()
    } else {
        message.replace(key, "[key]")
    };
    let words: Vec<String> = without_key
        .split(' ')
        .map(|w| {
            let bare = w.trim_start_matches(|c: char| !c.is_alphanumeric());
            if bare.starts_with("sk-") || bare.starts_with("sess-") {
                "[key]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let clean: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let mut out: String = clean.chars().take(MAX_MESSAGE_CHARS).collect();
    if clean.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// What a key test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    Passed {
        latency_ms: i64,
        model: String,
    },
    /// OpenAI refused the key itself (401 or 403): the key is marked `error`.
    Refused {
        latency_ms: i64,
        message: String,
    },
    /// Anything else: a timeout, a network error, OpenAI's 429 or 5xx, a malformed answer.
    Failed {
        latency_ms: i64,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_survive_redaction() {
        let key = "sk-proj-Secret1234567890abcd";
        let msg =
            format!("Incorrect API key provided: sk-pr***...abcd. Also {key}, and (sk-other-key).");
        let out = redact(&msg, key);
        assert!(!out.contains(key) && !out.contains("sk-"), "{out}");
        assert!(
            out.starts_with("Incorrect API key provided: [key]"),
            "{out}"
        );
        assert_eq!(redact("a\u{7}b", key), "ab");
        assert_eq!(redact(&"x".repeat(400), key).chars().count(), 301);
        assert_eq!(masked_key("abcd"), "sk-****abcd");
    }
}
