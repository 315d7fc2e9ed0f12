//! Input rules shared by every service: text is trimmed, limited in characters (not bytes),
//! keeps Persian exactly as sent, and refuses control and bidi-override characters.

use std::borrow::Cow;

use crate::{ApiError, FieldError};

/// Collects field errors and answers one 422 with all of them.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: &'static str, message: impl Into<Cow<'static, str>>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result`, if any, and gives back the value.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, &'static str>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(field, message);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Bidi embedding/override/isolate controls: they can make a name display as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters allowed inside a one-line display text. ZWNJ (U+200C) and ZWJ are kept: Persian
/// needs them.
fn is_forbidden_in_line(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// A one-line text such as a name or a subject: trimmed, 1..=max characters, no control or
/// bidi-override characters.
pub fn line(input: &str, max_chars: usize) -> Result<String, &'static str> {
    trimmed_text(input, max_chars, is_forbidden_in_line)
}

/// Multi-line text (a message body): newlines and tabs allowed, other controls not.
pub fn text(input: &str, max_chars: usize) -> Result<String, &'static str> {
    trimmed_text(input, max_chars, |c| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_bidi_control(c)
    })
}

/// `input` trimmed: 1..=max characters, none of them `forbidden`.
fn trimmed_text(
    input: &str,
    max_chars: usize,
    forbidden: impl Fn(char) -> bool,
) -> Result<String, &'static str> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("must not be empty");
    }
    if trimmed.chars().count() > max_chars {
        return Err("is too long");
    }
    if trimmed.chars().any(forbidden) {
        return Err("contains control or direction-override characters");
    }
    Ok(trimmed.to_owned())
}

/// An email address, trimmed and lower-cased. Deliberately simple (one `@`, a dot in the
/// domain, no spaces): the real check is the verification mail.
pub fn email(input: &str) -> Result<String, &'static str> {
    let e = input.trim().to_lowercase();
    if e.is_empty() {
        return Err("must not be empty");
    }
    if e.chars().count() > 254 {
        return Err("is too long");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err("is not a valid email address");
    };
    let valid = !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err("is not a valid email address")
    }
}

/// A phone number: digits with an optional leading `+`, spaces and dashes dropped; Persian
/// and Arabic-Indic digits are accepted and stored as ASCII.
pub fn phone(input: &str) -> Result<Option<String>, &'static str> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, c) in trimmed.chars().enumerate() {
        let digit = match c {
            '0'..='9' => Some(c),
            '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
            '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
            _ => None,
        };
        match (digit, c) {
            (Some(d), _) => out.push(d),
            (None, '+') if i == 0 => out.push('+'),
            (None, ' ' | '-' | '(' | ')') => {}
            _ => return Err("is not a valid phone number"),
        }
    }
    let digits = out.trim_start_matches('+').len();
    if !(7..=15).contains(&digits) {
        return Err("is not a valid phone number");
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_text_is_kept_exactly() {
        let name = "  علی\u{200C}رضا كريمي  "; // ZWNJ and Arabic kaf/yeh kept as sent
        assert_eq!(line(name, 100), Ok("علی\u{200C}رضا كريمي".to_owned()));
    }

    #[test]
    fn bidi_and_control_characters_are_refused() {
        assert!(line("abc\u{202E}gpj.exe", 100).is_err());
        assert!(line("a\u{2066}b", 100).is_err());
        assert!(line("a\nb", 100).is_err());
        assert!(line("   ", 100).is_err());
        assert!(text("line one\nline two", 100).is_ok());
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let persian = "ب".repeat(100); // 200 bytes
        assert!(line(&persian, 100).is_ok());
        assert!(line(&format!("{persian}ب"), 100).is_err());
    }

    #[test]
    fn emails_and_phones() {
        assert_eq!(email(" Ali@Example.COM "), Ok("ali@example.com".to_owned()));
        assert!(email("no-at-sign").is_err());
        assert!(email("a@b").is_err());
        assert_eq!(phone("۰۹۱۲ ۳۴۵ ۶۷۸۹"), Ok(Some("09123456789".to_owned())));
        assert_eq!(phone(""), Ok(None));
        assert!(phone("call me").is_err());
    }
}
