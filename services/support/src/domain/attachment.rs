//! What an attachment may be, and where its bytes live.
//!
//! - The type is decided by the bytes (magic numbers; text = valid UTF-8 without NUL), never by
//!   the client's `Content-Type` or the file name alone: a declared type or an extension that
//!   disagrees with the bytes is refused, so an `.exe` renamed `.png` never gets in.
//! - The client's file name is kept for display and `Content-Disposition` only, after refusing
//!   anything path-like; the bytes are stored under a server-generated key
//!   (`YYYY/MM/<random uuid>`), written to a temporary name and renamed, so a reader never
//!   sees half a file.

use std::{
    io,
    path::{Path, PathBuf},
};

use chrono::{Datelike, Utc};
use uuid::Uuid;

/// Default upper bound of one attachment (docs/api.md: ≤ 5 MB).
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;
/// File names are for people: longer ones are refused rather than cut.
pub const MAX_FILENAME_CHARS: usize = 200;

/// An uploaded file that passed every check (`handlers::input`).
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub kind: FileKind,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Png,
    Jpeg,
    Pdf,
    Text,
}

impl FileKind {
    /// The type stored and served (what the bytes are).
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Pdf => "application/pdf",
            FileKind::Text => "text/plain; charset=utf-8",
        }
    }

    /// Extensions a file of this kind may carry; the first is added to a name without one.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            FileKind::Png => &["png"],
            FileKind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            FileKind::Pdf => &["pdf"],
            FileKind::Text => &["txt", "log", "text"],
        }
    }

    /// Declared `Content-Type`s that agree with this kind (browsers vary a little).
    fn declared_ok(self, essence: &str) -> bool {
        match self {
            FileKind::Png => essence == "image/png",
            FileKind::Jpeg => matches!(essence, "image/jpeg" | "image/jpg" | "image/pjpeg"),
            FileKind::Pdf => matches!(essence, "application/pdf" | "application/x-pdf"),
            FileKind::Text => essence == "text/plain",
        }
    }
}

/// What the bytes are, if they are one of the allowed kinds.
pub fn sniff(bytes: &[u8]) -> Option<FileKind> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(FileKind::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(FileKind::Jpeg)
    } else if bytes.starts_with(b"%PDF-") {
        Some(FileKind::Pdf)
    } else if !bytes.is_empty() && !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        Some(FileKind::Text)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 422: the name is empty, too long, or path-like.
    BadName(&'static str),
    /// 422: no bytes.
    Empty,
    /// 415: the bytes are not an allowed kind, or disagree with the name or declared type.
    Type(&'static str),
}

/// A file that passed every check, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub kind: FileKind,
    pub filename: String,
}

/// The client's file name, refused if it could be a path or hide its real extension.
pub fn clean_filename(raw: &str) -> Result<String, Rejection> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Rejection::BadName("the file needs a name"));
    }
    if name.chars().count() > MAX_FILENAME_CHARS {
        return Err(Rejection::BadName("the file name is too long"));
    }
    let path_like = name.contains(['/', '\\'])
        || name.contains("..")
        || name.starts_with('.')
        || name.contains([':', '*', '?', '"', '<', '>', '|']);
    if path_like {
        return Err(Rejection::BadName(
            "the file name must not contain a path or any of / \\ : * ? \" < > |",
        ));
    }
    let hidden = name.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}')
    });
    if hidden {
        return Err(Rejection::BadName(
            "the file name contains control or direction characters",
        ));
    }
    Ok(name.to_owned())
}

/// All checks of one upload: name, size > 0, kind from the bytes, and agreement of the
/// extension and the declared type with what the bytes are.
pub fn check(raw_name: &str, declared: Option<&str>, bytes: &[u8]) -> Result<Checked, Rejection> {
    let mut filename = clean_filename(raw_name)?;
    if bytes.is_empty() {
        return Err(Rejection::Empty);
    }
    let kind = sniff(bytes).ok_or(Rejection::Type(
        "only PNG, JPEG, PDF and plain-text files can be attached",
    ))?;
    if let Some(declared) = declared {
        let essence = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        // No information in these: the bytes decide.
        let generic = essence.is_empty() || essence == "application/octet-stream";
        if !generic && !kind.declared_ok(&essence) {
            return Err(Rejection::Type(
                "the file's declared type does not match its content",
            ));
        }
    }
    match filename.rsplit_once('.') {
        Some((_, ext)) => {
            let ext = ext.to_lowercase();
            if !kind.extensions().contains(&ext.as_str()) {
                return Err(Rejection::Type(
                    "the file's extension does not match its content",
                ));
            }
        }
        None => {
            filename.push('.');
            filename.push_str(kind.extensions()[0]);
        }
    }
    Ok(Checked { kind, filename })
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266):
/// quotes, backslashes and non-ASCII never reach the quoted form.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The attachment directory. Keys are generated here and checked again on every read, so a
/// key from the database can never point outside the directory either.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    dir: PathBuf,
}

/// `YYYY/MM/<32 hex>`: lower-case hex, digits and two slashes, nothing else.
fn valid_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    matches!(parts.as_slice(), [y, m, id]
        if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit())
        && m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit())
        && id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl AttachmentStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        if !valid_key(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid storage key",
            ));
        }
        Ok(self.dir.join(key))
    }

    /// Stores the bytes under a new key and returns the key.
    pub async fn save(&self, bytes: &[u8]) -> io::Result<String> {
        let now = Utc::now();
        let key = format!(
            "{:04}/{:02}/{}",
            now.year(),
            now.month(),
            Uuid::new_v4().simple()
        );
        let path = self.path_of(&key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let tmp = path.with_extension("part");
        let written = async {
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(key)
    }

    pub async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path_of(key)?).await
    }

    /// Best effort: a stored file whose row was never committed.
    pub async fn remove(&self, key: &str) {
        if let Ok(path) = self.path_of(key)
            && let Err(e) = tokio::fs::remove_file(&path).await
        {
            tracing::warn!(error = %e, key, "could not remove an orphaned attachment");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(FileKind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(FileKind::Jpeg));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(FileKind::Pdf));
        assert_eq!(sniff("سلام\n".as_bytes()), Some(FileKind::Text));
        assert_eq!(sniff(b"MZ\x90\x00\x03\x00"), None);
        assert_eq!(sniff(&[0xC3, 0x28]), None); // invalid UTF-8
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn renamed_executables_and_mismatches_are_refused() {
        let exe = b"MZ\x90\x00\x03\x00\x00\x00";
        assert!(matches!(
            check("photo.png", Some("image/png"), exe),
            Err(Rejection::Type(_))
        ));
        let png = b"\x89PNG\r\n\x1a\nrest";
        assert!(check("photo.png", Some("image/png"), png).is_ok());
        assert!(check("photo.png", Some("application/octet-stream"), png).is_ok());
        assert!(matches!(
            check("photo.exe", None, png),
            Err(Rejection::Type(_))
        ));
        assert!(matches!(
            check("photo.png", Some("application/pdf"), png),
            Err(Rejection::Type(_))
        ));
        assert!(matches!(
            check("notes.html", None, b"<script>alert(1)</script>"),
            Err(Rejection::Type(_))
        ));
        assert_eq!(check("photo", None, png).unwrap().filename, "photo.png");
        assert_eq!(
            check("گزارش خطا.txt", Some("text/plain"), "خطا".as_bytes())
                .unwrap()
                .filename,
            "گزارش خطا.txt"
        );
        assert_eq!(check("a.png", None, b""), Err(Rejection::Empty));
    }

    #[test]
    fn path_like_names_are_refused() {
        for bad in [
            "../../etc/passwd",
            "..\\boot.ini",
            "/etc/passwd",
            "a/b.png",
            "C:evil.png",
            ".htaccess",
            "x\u{202E}gnp.exe",
            "a\0b.png",
            "",
            "   ",
        ] {
            assert!(
                matches!(clean_filename(bad), Err(Rejection::BadName(_))),
                "{bad:?}"
            );
        }
        assert_eq!(clean_filename(" report.pdf ").unwrap(), "report.pdf");
    }

    #[test]
    fn content_disposition_is_safe_and_keeps_unicode() {
        let cd = content_disposition("گزارش \"1\".pdf");
        assert!(cd.starts_with("attachment; filename=\""), "{cd}");
        let quoted = cd.split('"').nth(1).unwrap();
        assert!(quoted.is_ascii() && !quoted.contains('\\'), "{cd}");
        assert!(cd.contains("filename*=UTF-8''%DA%AF"), "{cd}");
        assert!(cd.contains("%221%22.pdf"), "{cd}");
    }

    #[test]
    fn keys_are_checked_on_the_way_back() {
        assert!(valid_key("2026/11/0123456789abcdef0123456789abcdef"));
        assert!(!valid_key("../11/0123456789abcdef0123456789abcdef"));
        assert!(!valid_key("2026/11/../../etc/passwd"));
        assert!(!valid_key("/etc/passwd"));
    }
}
