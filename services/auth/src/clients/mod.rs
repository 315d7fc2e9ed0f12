//! Auth's calls to outside parties: outgoing mail (SMTP, or the development sink).

pub mod mail;
