//! The rules of knowledge base entries, KB templates and fallback reports (docs/panels.md
//! "Knowledge base entries", "KB templates", "Fallback log"): lengths in characters, text
//! trimmed, Persian kept exactly, control and direction-override characters refused.

use zimmer_http::{ApiError, validate};

pub const CATEGORY_MAX: usize = 100;
pub const ANSWER_MAX: usize = 5000;
pub const QUESTION_MAX: usize = 500;
pub const MESSAGE_MAX: usize = 4000;
pub const ERROR_TYPE_MAX: usize = 64;
pub const KEY_MAX: usize = 200;

/// A knowledge entry's fields, checked: `(category, answer)`.
pub fn entry(category: &str, answer: &str) -> Result<(String, String), ApiError> {
    let mut v = validate::Validator::new();
    let category = v.check("category", validate::line(category, CATEGORY_MAX));
    let answer = v.check("answer", validate::text(answer, ANSWER_MAX));
    v.finish()?;
    Ok((category.unwrap_or_default(), answer.unwrap_or_default()))
}

/// A template's fields, checked: `(category or none, question, answer)`; `""` or null is no
/// category.
pub fn template(
    category: Option<&str>,
    question: &str,
    answer: &str,
) -> Result<(Option<String>, String, String), ApiError> {
    let mut v = validate::Validator::new();
    let category = match category.map(str::trim) {
        None | Some("") => None,
        Some(c) => v.check("category", validate::line(c, CATEGORY_MAX)),
    };
    let question = v.check("question", validate::text(question, QUESTION_MAX));
    let answer = v.check("answer", validate::text(answer, ANSWER_MAX));
    v.finish()?;
    Ok((
        category,
        question.unwrap_or_default(),
        answer.unwrap_or_default(),
    ))
}

/// A vendor's fallback report, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackReport {
    pub user_automation_id: i64,
    pub message: String,
    pub error_type: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Idempotency keys are 1–200 visible ASCII characters, as for consumption (docs/api.md
/// "Idempotency").
pub fn valid_key(key: &str) -> bool {
    (1..=KEY_MAX).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

pub fn fallback(
    user_automation_id: i64,
    message: &str,
    error_type: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<FallbackReport, ApiError> {
    let mut v = validate::Validator::new();
    if user_automation_id <= 0 {
        v.error("user_automation_id", "must be a positive id");
    }
    let message = v.check("message", validate::text(message, MESSAGE_MAX));
    let error_type = match error_type.map(str::trim) {
        None | Some("") => None,
        Some(t) => v.check("error_type", validate::line(t, ERROR_TYPE_MAX)),
    };
    let key = match idempotency_key.map(str::trim) {
        None | Some("") => None,
        Some(k) if valid_key(k) => Some(k.to_owned()),
        Some(_) => {
            v.error(
                "idempotency_key",
                "must be 1 to 200 visible ASCII characters",
            );
            None
        }
    };
    v.finish()?;
    Ok(FallbackReport {
        user_automation_id,
        message: message.unwrap_or_default(),
        error_type,
        idempotency_key: key,
    })
}

/// A fallback's status after a staff change: `open` or `resolved`.
pub fn fallback_status(raw: &str) -> Result<&'static str, ApiError> {
    use zimmer_events::contracts::internal::knowledge::{FALLBACK_OPEN, FALLBACK_RESOLVED};
    match raw.trim() {
        s if s == FALLBACK_OPEN => Ok(FALLBACK_OPEN),
        s if s == FALLBACK_RESOLVED => Ok(FALLBACK_RESOLVED),
        _ => Err(ApiError::invalid("status", "must be open or resolved")),
    }
}

/// A list filter text: trimmed, blank = none, at most 100 characters (422 beyond).
pub fn filter_text(field: &'static str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().count() > CATEGORY_MAX => Err(ApiError::invalid(field, "is too long")),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_trimmed_and_keep_persian() {
        let (c, a) = entry("  سوالات\u{200C}متداول ", " پاسخ\nخط دوم ").unwrap_or_default();
        assert_eq!(c, "سوالات\u{200C}متداول");
        assert_eq!(a, "پاسخ\nخط دوم");
        assert!(entry("", "a").is_err());
        assert!(entry(&"ب".repeat(101), "a").is_err());
        assert!(entry(&"ب".repeat(100), &"ب".repeat(5000)).is_ok());
        assert!(entry("c", &"a".repeat(5001)).is_err());
        assert!(entry("c", "a\u{0007}b").is_err());
        assert!(entry("c\u{202E}", "a").is_err());
    }

    #[test]
    fn templates_have_an_optional_category() {
        assert_eq!(
            template(Some(""), "q?", "a").ok(),
            Some((None, "q?".to_owned(), "a".to_owned()))
        );
        assert!(template(None, "", "a").is_err());
        assert!(template(None, &"q".repeat(501), "a").is_err());
    }

    #[test]
    fn fallback_reports() {
        let r = fallback(3, " hi ", Some(""), Some(" k1 ")).ok();
        assert_eq!(
            r,
            Some(FallbackReport {
                user_automation_id: 3,
                message: "hi".to_owned(),
                error_type: None,
                idempotency_key: Some("k1".to_owned()),
            })
        );
        assert!(fallback(0, "hi", None, None).is_err());
        assert!(fallback(1, "", None, None).is_err());
        assert!(fallback(1, "hi", Some(&"e".repeat(65)), None).is_err());
        assert!(fallback(1, "hi", None, Some("has space")).is_err());
        assert_eq!(fallback_status(" resolved ").ok(), Some("resolved"));
        assert!(fallback_status("closed").is_err());
    }
}
