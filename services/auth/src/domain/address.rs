//! Email addresses as auth stores and looks them up: NFKC-normalised, then trimmed and
//! lower-cased, and plain ASCII only. NFKC folds compatibility forms onto their ASCII twins
//! (full-width `ｃase@example.com` is `case@example.com`), so a look-alike cannot become a
//! second account; what is still not ASCII after that (Cyrillic `а`, Greek `ο`, …) is refused
//! outright, because it would look the same as another address on every screen.

use unicode_normalization::UnicodeNormalization;

/// Why a non-ASCII address is refused (shown to the person, on the `email` field).
pub const NOT_ASCII: &str = "must use plain Latin letters (a-z), digits and ordinary punctuation only; look-alike characters from other alphabets are not accepted";

/// The canonical form of an email address, or why it is not acceptable.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let folded: String = input.nfkc().collect();
    let email = zimmer_http::validate::email(&folded)?;
    if email.is_ascii() {
        Ok(email)
    } else {
        Err(NOT_ASCII)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_forms_fold_and_other_alphabets_are_refused() {
        assert_eq!(normalize("ｃase@example.com").unwrap(), "case@example.com");
        assert_eq!(
            normalize(" ＣＡＳＥ＠ｅｘａｍｐｌｅ．ｃｏｍ ").unwrap(),
            "case@example.com"
        );
        assert_eq!(normalize("Case@Example.com").unwrap(), "case@example.com");
        // Cyrillic а (U+0430) and Greek ο (U+03BF) stay what they are: refused.
        assert_eq!(normalize("cаse@example.com"), Err(NOT_ASCII));
        assert_eq!(normalize("case@exοmple.com"), Err(NOT_ASCII));
        assert_eq!(normalize("علی@example.com"), Err(NOT_ASCII));
        assert!(normalize("not an email").is_err());
    }
}
