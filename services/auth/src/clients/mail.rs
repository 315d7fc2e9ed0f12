//! Outgoing mail (verification, password reset, staff invitations, security notices), in
//! Persian. Through SMTP when `SMTP_URL` is set (`smtps://user:pass@host:465` or
//! `smtp://host:587?tls=required`), otherwise, in development only, into a local directory
//! (`MAIL_SINK_DIR`, default `.data/mail`) as one JSON file per mail, which developers and
//! tests read. In production `SMTP_URL` is required: auth does not start without it.
//!
//! Mail is sent after the transaction that created its token has committed, in a background
//! task: the HTTP answer never waits for (or reveals anything through the timing of) SMTP.
//! A mail lost to a crash between commit and send is re-requested by the user (the flows all
//! have a "send again"); the token it carried simply expires.

use std::path::PathBuf;

use chrono::Utc;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use serde::{Deserialize, Serialize};
use zimmer_config::Settings;

/// One mail as written to the sink (and as tests read it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Sink(PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .env
            .string("MAIL_FROM", "Zimmer <no-reply@zimmer.local>")
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM is not a mailbox: {e}"))?;
        let transport = match settings.env.get("SMTP_URL") {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is invalid: {e}"))?
                    .build(),
            ),
            // The sink holds live reset and verification links in plain files: in production
            // that would hand accounts to whoever reads the disk, and people would get no mail.
            None if settings.is_production() => anyhow::bail!(
                "SMTP_URL must be set in production (e.g. smtps://user:pass@host:465): auth \
                 refuses to write password-reset and verification links to a local directory"
            ),
            None => Transport::Sink(PathBuf::from(
                settings.env.string("MAIL_SINK_DIR", ".data/mail"),
            )),
        };
        Ok(Self { transport, from })
    }

    /// Sends in a background task; failures are logged (never the body: it holds tokens).
    pub fn send_in_background(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            match mailer.send(&mail).await {
                Ok(()) => tracing::info!(subject = %mail.subject, "mail sent"),
                Err(e) => tracing::error!(error = %e, subject = %mail.subject, "mail not sent"),
            }
        });
    }

    pub async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let to: Mailbox = mail
                    .to
                    .parse()
                    .map_err(|e| anyhow::anyhow!("bad recipient: {e}"))?;
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        mail.text.clone(),
                        mail.html.clone(),
                    ))?;
                smtp.send(message).await?;
                Ok(())
            }
            Transport::Sink(dir) => {
                let dir = dir.clone();
                let body = serde_json::to_vec_pretty(mail)?;
                // Blocking file I/O off the async workers; written then renamed, so a reader
                // never sees half a file.
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    let name = format!(
                        "{}-{}.json",
                        Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                        uuid::Uuid::new_v4().simple()
                    );
                    let tmp = dir.join(format!(".{name}.tmp"));
                    std::fs::write(&tmp, body)?;
                    std::fs::rename(&tmp, dir.join(name))?;
                    Ok(())
                })
                .await?
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!doctype html>\n<html lang=\"fa\" dir=\"rtl\"><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family: Tahoma, sans-serif; direction: rtl; text-align: right\">\n{body}</body></html>\n"
    )
}

fn link_html(link: &str) -> String {
    let l = escape(link);
    format!("<a href=\"{l}\" dir=\"ltr\">{l}</a>")
}

/// A mail to `name` at `to`: `text` as it is, and an HTML part of `paragraphs` between the
/// greeting and the signature (the plain text carries its own).
fn mail(to: &str, name: &str, subject: &str, text: String, paragraphs: Vec<String>) -> Mail {
    let mut all = Vec::with_capacity(paragraphs.len() + 2);
    all.push(format!("سلام {}،", escape(name)));
    all.extend(paragraphs);
    all.push("زیمر".to_owned());
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html: html(&all),
    }
}

/// The verification mail: a link and the 6-digit code the panel asks for.
pub fn verification(to: &str, name: &str, link: &str, code: &str, hours: i64) -> Mail {
    let text = format!(
        "سلام {name}،\n\n\
         برای تأیید ایمیل حساب کاربری خود در زیمر روی پیوند زیر بزنید:\n{link}\n\n\
         یا این کد را در پنل کاربری وارد کنید: {code}\n\n\
         این پیوند و کد تا {hours} ساعت معتبر است. اگر این درخواست از طرف شما نبوده، این ایمیل را نادیده بگیرید.\n\n\
         زیمر"
    );
    mail(
        to,
        name,
        "تأیید ایمیل حساب زیمر",
        text,
        vec![
            format!(
                "برای تأیید ایمیل حساب کاربری خود در زیمر روی پیوند زیر بزنید:<br>{}",
                link_html(link)
            ),
            format!(
                "یا این کد را در پنل کاربری وارد کنید: <strong dir=\"ltr\">{}</strong>",
                escape(code)
            ),
            format!(
                "این پیوند و کد تا {hours} ساعت معتبر است. اگر این درخواست از طرف شما نبوده، این ایمیل را نادیده بگیرید."
            ),
        ],
    )
}

/// The password-reset mail.
pub fn password_reset(to: &str, name: &str, link: &str, minutes: i64) -> Mail {
    let text = format!(
        "سلام {name}،\n\n\
         درخواستی برای بازیابی رمز عبور حساب شما در زیمر ثبت شد. برای انتخاب رمز عبور جدید روی پیوند زیر بزنید:\n{link}\n\n\
         این پیوند تا {minutes} دقیقه معتبر است و فقط یک بار کار می‌کند. پس از تغییر رمز، از همهٔ دستگاه‌ها خارج می‌شوید.\n\
         اگر این درخواست از طرف شما نبوده، این ایمیل را نادیده بگیرید؛ رمز عبور شما تغییری نمی‌کند.\n\n\
         زیمر"
    );
    mail(
        to,
        name,
        "بازیابی رمز عبور زیمر",
        text,
        vec![
        format!(
            "درخواستی برای بازیابی رمز عبور حساب شما در زیمر ثبت شد. برای انتخاب رمز عبور جدید روی پیوند زیر بزنید:<br>{}",
            link_html(link)
        ),
        format!(
            "این پیوند تا {minutes} دقیقه معتبر است و فقط یک بار کار می‌کند. پس از تغییر رمز، از همهٔ دستگاه‌ها خارج می‌شوید."
        ),
        "اگر این درخواست از طرف شما نبوده، این ایمیل را نادیده بگیرید؛ رمز عبور شما تغییری نمی‌کند."
            .to_owned(),
        ],
    )
}

/// A staff account made without a password: the link sets the first one.
pub fn staff_invitation(to: &str, name: &str, link: &str, hours: i64) -> Mail {
    let text = format!(
        "سلام {name}،\n\n\
         یک حساب کاربری کارمندی برای شما در زیمر ساخته شد. برای انتخاب رمز عبور روی پیوند زیر بزنید:\n{link}\n\n\
         این پیوند تا {hours} ساعت معتبر است و فقط یک بار کار می‌کند.\n\n\
         زیمر"
    );
    mail(
        to,
        name,
        "حساب کاربری شما در زیمر",
        text,
        vec![
            format!(
                "یک حساب کاربری کارمندی برای شما در زیمر ساخته شد. برای انتخاب رمز عبور روی پیوند زیر بزنید:<br>{}",
                link_html(link)
            ),
            format!("این پیوند تا {hours} ساعت معتبر است و فقط یک بار کار می‌کند."),
        ],
    )
}

/// Two-factor sign-in was turned on or off: the owner hears of it (a thief holding a session
/// cannot do it silently), and learns that every other device was signed out.
pub fn twofa_changed(to: &str, name: &str, enabled: bool) -> Mail {
    let (state, subject) = if enabled {
        ("فعال", "ورود دومرحله‌ای حساب زیمر فعال شد")
    } else {
        ("غیرفعال", "ورود دومرحله‌ای حساب زیمر غیرفعال شد")
    };
    let what = format!(
        "ورود دومرحله‌ای (کد برنامهٔ احراز هویت) برای حساب شما در زیمر {state} شد و برای امنیت حساب، از همهٔ دستگاه‌های دیگر خارج شدید."
    );
    let warn = "اگر این کار را شما انجام نداده‌اید، همین حالا رمز عبور خود را تغییر دهید و با پشتیبانی زیمر تماس بگیرید.";
    let text = format!("سلام {name}،\n\n{what}\n{warn}\n\nزیمر");
    mail(to, name, subject, text, vec![what, warn.to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_carry_link_and_code_and_escape_names() {
        let m = verification(
            "a@example.com",
            "<b>علی</b>",
            "http://localhost:3000/verify-email?token=abc",
            "012345",
            24,
        );
        assert!(m.text.contains("verify-email?token=abc"));
        assert!(m.text.contains("012345"));
        assert!(m.html.contains("&lt;b&gt;علی"));
        assert!(!m.html.contains("<b>علی"));
        let r = password_reset("a@example.com", "x", "http://f/reset-password?token=t", 30);
        assert!(r.text.contains("reset-password?token=t"));
    }

    #[tokio::test]
    async fn the_sink_writes_one_json_file_per_mail() {
        let dir = std::env::temp_dir().join(format!("mail-sink-{}", uuid::Uuid::new_v4()));
        let settings = Settings::load(
            "auth",
            zimmer_config::Env::from_pairs([("MAIL_SINK_DIR", dir.to_string_lossy().as_ref())]),
        )
        .unwrap();
        let mailer = Mailer::from_settings(&settings).unwrap();
        mailer
            .send(&password_reset("a@example.com", "x", "http://l", 30))
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let mail: Mail = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
        assert_eq!(mail.to, "a@example.com");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
