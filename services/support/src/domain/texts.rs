//! The Persian texts of notifications. Customers read them in the Persian panel, so numbers use
//! Persian digits with the Arabic thousands separator, and amounts are in Rials as stored.

use serde_json::{Value, json};

/// A notification before it has a user and an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// payment, ticket, automation, admin or system (the API's `type`).
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub data: Value,
}

/// `1234567` → `۱٬۲۳۴٬۵۶۷`; negative numbers keep their sign.
pub fn fa_number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    let len = digits.len();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push('\u{066C}');
        }
        let v = d.to_digit(10).unwrap_or(0);
        out.push(char::from_u32(0x06F0 + v).unwrap_or(d));
    }
    out
}

pub fn welcome(name: &str) -> Draft {
    let name = name.trim();
    let greeting = if name.is_empty() {
        "کاربر گرامی".to_owned()
    } else {
        format!("{name} عزیز")
    };
    Draft {
        kind: "system",
        title: "به زیمر خوش آمدید".to_owned(),
        body: format!(
            "{greeting}، حساب شما ساخته شد. از بازار اتوماسیون‌ها یک اتوماسیون اضافه کنید و آن را با توکن‌های رایگان آزمایشی امتحان کنید."
        ),
        data: json!({}),
    }
}

pub fn payment_verified(
    payment_id: i64,
    automation_id: Option<i64>,
    user_automation_id: Option<i64>,
    amount: i64,
    tokens: i64,
    ref_id: Option<&str>,
) -> Draft {
    let mut body = format!(
        "پرداخت شما به مبلغ {} ریال با موفقیت انجام شد و {} توکن به اتوماسیون شما افزوده می‌شود.",
        fa_number(amount),
        fa_number(tokens)
    );
    if let Some(r) = ref_id.filter(|r| !r.is_empty()) {
        body.push_str(&format!(" کد پیگیری: {r}"));
    }
    Draft {
        kind: "payment",
        title: "پرداخت موفق".to_owned(),
        body,
        data: json!({
            "payment_id": payment_id,
            "automation_id": automation_id,
            "user_automation_id": user_automation_id,
            "ref_id": ref_id,
        }),
    }
}

pub fn payment_failed(payment_id: i64, reason: Option<&str>) -> Draft {
    let detail = match reason.unwrap_or_default() {
        "canceled" | "cancelled" | "NOK" => "پرداخت لغو شد.",
        "expired" => "مهلت پرداخت به پایان رسید.",
        _ => "پرداخت انجام نشد.",
    };
    Draft {
        kind: "payment",
        title: "پرداخت ناموفق".to_owned(),
        body: format!(
            "{detail} اگر مبلغی از حساب شما کسر شده باشد، حداکثر تا ۷۲ ساعت به حساب شما بازمی‌گردد. شمارهٔ پرداخت: {}",
            fa_number(payment_id)
        ),
        data: json!({ "payment_id": payment_id, "reason": reason }),
    }
}

fn automation_data(user_automation_id: i64, automation_id: Option<i64>) -> Value {
    json!({ "user_automation_id": user_automation_id, "automation_id": automation_id })
}

/// `automation` is the automation's name when known.
fn of_automation(automation: Option<&str>) -> String {
    match automation {
        Some(name) => format!("اتوماسیون «{name}»"),
        None => "اتوماسیون شما".to_owned(),
    }
}

pub fn tokens_credited(
    user_automation_id: i64,
    automation_id: Option<i64>,
    automation: Option<&str>,
    tokens: i64,
    balance: Option<i64>,
) -> Draft {
    let mut body = format!(
        "{} توکن به {} افزوده شد.",
        fa_number(tokens),
        of_automation(automation)
    );
    if let Some(b) = balance {
        body.push_str(&format!(" موجودی فعلی: {} توکن.", fa_number(b)));
    }
    Draft {
        kind: "automation",
        title: "توکن‌ها افزوده شد".to_owned(),
        body,
        data: automation_data(user_automation_id, automation_id),
    }
}

pub fn tokens_low(
    user_automation_id: i64,
    automation_id: Option<i64>,
    automation: Option<&str>,
    remaining: i64,
) -> Draft {
    Draft {
        kind: "automation",
        title: "موجودی توکن رو به اتمام است".to_owned(),
        body: format!(
            "تنها {} توکن برای {} باقی مانده است. برای ادامهٔ کار بدون وقفه، توکن بخرید.",
            fa_number(remaining),
            of_automation(automation)
        ),
        data: automation_data(user_automation_id, automation_id),
    }
}

pub fn tokens_depleted(
    user_automation_id: i64,
    automation_id: Option<i64>,
    automation: Option<&str>,
) -> Draft {
    Draft {
        kind: "automation",
        title: "توکن‌های شما تمام شد".to_owned(),
        body: format!(
            "موجودی توکن {} به پایان رسید و تا خرید توکن جدید کار نمی‌کند.",
            of_automation(automation)
        ),
        data: automation_data(user_automation_id, automation_id),
    }
}

pub fn tokens_adjusted(
    user_automation_id: i64,
    automation_id: Option<i64>,
    automation: Option<&str>,
    delta: i64,
    reason: Option<&str>,
) -> Draft {
    let (title, verb) = if delta >= 0 {
        ("افزایش موجودی توکن", "افزوده شد")
    } else {
        ("کاهش موجودی توکن", "کسر شد")
    };
    let target = of_automation(automation);
    let preposition = if delta >= 0 { "به" } else { "از" };
    let mut body = format!(
        "{} توکن توسط پشتیبانی {preposition} {target} {verb}.",
        fa_number(delta.abs())
    );
    if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        body.push_str(&format!(" دلیل: {r}"));
    }
    Draft {
        kind: "automation",
        title: title.to_owned(),
        body,
        data: automation_data(user_automation_id, automation_id),
    }
}

/// To the customer: staff answered.
pub fn staff_replied(ticket_id: i64, subject: &str) -> Draft {
    Draft {
        kind: "ticket",
        title: "پاسخ جدید به تیکت شما".to_owned(),
        body: format!("پشتیبانی به تیکت «{subject}» پاسخ داد."),
        data: json!({ "ticket_id": ticket_id }),
    }
}

/// To the assigned staff member: the customer wrote.
pub fn customer_replied(ticket_id: i64, subject: &str) -> Draft {
    Draft {
        kind: "ticket",
        title: "پیام جدید مشتری".to_owned(),
        body: format!(
            "مشتری در تیکت «{subject}» (شمارهٔ {}) پیام جدیدی نوشت.",
            fa_number(ticket_id)
        ),
        data: json!({ "ticket_id": ticket_id }),
    }
}

/// To a staff member a ticket was just assigned to.
pub fn ticket_assigned(ticket_id: i64, subject: &str) -> Draft {
    Draft {
        kind: "ticket",
        title: "تیکت به شما واگذار شد".to_owned(),
        body: format!(
            "تیکت «{subject}» (شمارهٔ {}) به شما واگذار شد.",
            fa_number(ticket_id)
        ),
        data: json!({ "ticket_id": ticket_id }),
    }
}

/// To the customer: staff resolved or closed their ticket.
pub fn ticket_status(ticket_id: i64, subject: &str, status: &str) -> Option<Draft> {
    let (title, body) = match status {
        "resolved" => (
            "تیکت شما حل شد",
            format!(
                "تیکت «{subject}» حل‌شده علامت خورد. اگر مشکل هنوز باقی است، به همان تیکت پاسخ دهید."
            ),
        ),
        "closed" => ("تیکت شما بسته شد", format!("تیکت «{subject}» بسته شد.")),
        _ => return None,
    };
    Some(Draft {
        kind: "ticket",
        title: title.to_owned(),
        body,
        data: json!({ "ticket_id": ticket_id, "status": status }),
    })
}

/// To staff who run automations.
pub fn automation_health(automation_id: i64, name: Option<&str>, from: &str, to: &str) -> Draft {
    let label = |s: &str| match s {
        "healthy" => "سالم",
        "degraded" => "کند",
        "down" => "از کار افتاده",
        _ => "نامشخص",
    };
    let who = match name {
        Some(n) => format!("«{n}»"),
        None => format!("شمارهٔ {}", fa_number(automation_id)),
    };
    Draft {
        kind: "automation",
        title: "تغییر وضعیت سلامت اتوماسیون".to_owned(),
        body: format!(
            "وضعیت اتوماسیون {who} از «{}» به «{}» تغییر کرد.",
            label(from),
            label(to)
        ),
        data: json!({ "automation_id": automation_id, "from": from, "to": to }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_numbers() {
        assert_eq!(fa_number(0), "۰");
        assert_eq!(fa_number(999), "۹۹۹");
        assert_eq!(fa_number(1000), "۱٬۰۰۰");
        assert_eq!(fa_number(1_234_567), "۱٬۲۳۴٬۵۶۷");
        assert_eq!(fa_number(-50_000), "-۵۰٬۰۰۰");
    }

    #[test]
    fn receipt_mentions_amount_tokens_and_reference() {
        let d = payment_verified(42, Some(3), Some(9), 1_500_000, 100, Some("A1B2"));
        assert_eq!(d.kind, "payment");
        assert!(d.body.contains("۱٬۵۰۰٬۰۰۰ ریال"), "{}", d.body);
        assert!(d.body.contains("۱۰۰ توکن"), "{}", d.body);
        assert!(d.body.contains("A1B2"));
        assert_eq!(d.data["payment_id"], 42);
        assert_eq!(d.data["automation_id"], 3);
    }
}
