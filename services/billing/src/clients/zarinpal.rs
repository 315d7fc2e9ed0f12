//! Zarinpal REST API v4 client (docs/payments.md): request, verify, inquiry, unVerified.
//!
//! Every answer is read whatever its HTTP status; `data`/`errors` are accepted as `[]`, `{}` or
//! objects and `code` as a number or a numeric string. A transport error, a timeout, a 5xx or a
//! body that is not the envelope is [`Answer::Indeterminate`]: the caller must never take it as
//! "failed". The merchant id is sent, never logged.

use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use serde::Serialize;
use serde_json::Value;
use zimmer_config::Secret;

/// What one call to the gateway came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    /// `data.code` 100 (or 101 on verify).
    Ok(T),
    /// The gateway answered with an error code: a definite "no" for this call.
    Refused(GatewayError),
    /// Nothing is known: network error, timeout, 5xx, a body that is not the envelope.
    Indeterminate(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    pub code: i64,
    pub message: String,
    /// `[{field: message}]` flattened.
    pub validations: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestOk {
    pub authority: String,
    pub fee_type: Option<String>,
    pub fee: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOk {
    /// 100 verified now, 101 verified before (a repeat, or an auto-verifying terminal).
    pub code: i64,
    pub ref_id: Option<i64>,
    pub card_pan: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedItem {
    pub authority: String,
    pub amount: Option<i64>,
}

/// The session state `inquiry.json` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InquiryStatus {
    Verified,
    Paid,
    InBank,
    Failed,
    Reversed,
}

impl InquiryStatus {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "VERIFIED" => Some(Self::Verified),
            "PAID" => Some(Self::Paid),
            "IN_BANK" => Some(Self::InBank),
            "FAILED" => Some(Self::Failed),
            "REVERSED" => Some(Self::Reversed),
            _ => None,
        }
    }
}

/// The hosts of the real gateway; production accepts nothing else (no sandbox, no fake).
pub const LIVE_HOSTS: [&str; 2] = ["https://payment.zarinpal.com", "https://api.zarinpal.com"];
pub const SANDBOX_HOST: &str = "https://sandbox.zarinpal.com";

/// Amount bounds of `request.json`, in Rial (docs/payments.md).
pub const MIN_AMOUNT: i64 = 10_000;
pub const MAX_AMOUNT: i64 = 1_000_000_000;

#[derive(Clone)]
pub struct ZarinpalClient {
    http: reqwest::Client,
    base: String,
    merchant_id: Secret,
    metrics: Option<ClientMetrics>,
}

#[derive(Clone)]
struct ClientMetrics {
    calls: IntCounterVec,
    duration: HistogramVec,
}

impl ClientMetrics {
    fn register(registry: &prometheus::Registry) -> Option<Self> {
        let calls = IntCounterVec::new(
            Opts::new(
                "zarinpal_calls_total",
                "Calls to the Zarinpal API by endpoint and result (ok, refused, indeterminate)",
            ),
            &["endpoint", "result"],
        )
        .ok()?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "zarinpal_call_duration_seconds",
                "Latency of calls to the Zarinpal API",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["endpoint"],
        )
        .ok()?;
        // A second registration (several clients on one registry) keeps the first.
        let _ = registry.register(Box::new(calls.clone()));
        let _ = registry.register(Box::new(duration.clone()));
        Some(Self { calls, duration })
    }
}

impl std::fmt::Debug for ZarinpalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarinpalClient")
            .field("base", &self.base)
            .field("merchant_id", &mask_merchant(self.merchant_id.expose()))
            .finish()
    }
}

/// `1a2b…9f0e`: enough to tell merchants apart in a log, not enough to use.
pub fn mask_merchant(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "***".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[derive(Serialize)]
struct RequestBody<'a> {
    merchant_id: &'a str,
    amount: i64,
    currency: &'static str,
    description: &'a str,
    callback_url: &'a str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    order_id: &'a str,
}

impl ZarinpalClient {
    pub fn new(
        base_url: &str,
        merchant_id: Secret,
        connect_timeout: Duration,
        total_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(total_timeout)
            // The API never redirects; a redirect means a wrong base URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("zimmer-billing")
            .build()?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            merchant_id,
            metrics: None,
        })
    }

    /// Counts calls and their latency in `registry` (the service's `/metrics`).
    pub fn with_metrics(mut self, registry: &prometheus::Registry) -> Self {
        self.metrics = ClientMetrics::register(registry);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Where the payer is sent after a successful request.
    pub fn start_pay_url(&self, authority: &str) -> String {
        format!("{}/pg/StartPay/{}", self.base, authority)
    }

    /// `request.json`: opens a payment session of `amount` Rial.
    pub async fn request(
        &self,
        amount: i64,
        description: &str,
        callback_url: &str,
        order_id: &str,
    ) -> Answer<RequestOk> {
        let body = RequestBody {
            merchant_id: self.merchant_id.expose(),
            amount,
            currency: "IRR",
            description,
            callback_url,
            metadata: Metadata { order_id },
        };
        self.call("request", &body, |data| {
            let authority = str_field(data, "authority")?;
            if authority.is_empty() {
                return None;
            }
            Some(RequestOk {
                authority,
                fee_type: str_field(data, "fee_type"),
                fee: int_field(data, "fee"),
            })
        })
        .await
    }

    /// `verify.json` with the amount stored at request time.
    pub async fn verify(&self, authority: &str, amount: i64) -> Answer<VerifyOk> {
        let body = serde_json::json!({
            "merchant_id": self.merchant_id.expose(),
            "amount": amount,
            "authority": authority,
        });
        self.call("verify", &body, |data| {
            Some(VerifyOk {
                code: int_field(data, "code")?,
                ref_id: int_field(data, "ref_id"),
                card_pan: str_field(data, "card_pan").filter(|s| !s.is_empty()),
            })
        })
        .await
    }

    /// `inquiry.json`: the state of a session (after -51, to tell "at the bank" from "failed").
    pub async fn inquiry(&self, authority: &str) -> Answer<InquiryStatus> {
        let body = serde_json::json!({
            "merchant_id": self.merchant_id.expose(),
            "authority": authority,
        });
        self.call("inquiry", &body, |data| {
            InquiryStatus::parse(&str_field(data, "status")?)
        })
        .await
    }

    /// `unVerified.json`: paid sessions nobody verified (the latest 100).
    pub async fn unverified(&self) -> Answer<Vec<UnverifiedItem>> {
        let body = serde_json::json!({ "merchant_id": self.merchant_id.expose() });
        self.call("unVerified", &body, |data| {
            let list = match data.get("authorities") {
                Some(Value::Array(list)) => list,
                // An empty list is sometimes `{}` or absent.
                None | Some(Value::Null | Value::Object(_)) => return Some(Vec::new()),
                Some(_) => return None,
            };
            Some(
                list.iter()
                    .filter_map(|item| {
                        Some(UnverifiedItem {
                            authority: str_field(item, "authority")?,
                            amount: int_field(item, "amount"),
                        })
                    })
                    .collect(),
            )
        })
        .await
    }

    async fn call<B, T, F>(&self, endpoint: &'static str, body: &B, parse: F) -> Answer<T>
    where
        B: Serialize + ?Sized,
        F: FnOnce(&Value) -> Option<T>,
    {
        let url = format!("{}/pg/v4/payment/{endpoint}.json", self.base);
        let started = Instant::now();
        let sent = self
            .http
            .post(&url)
            .header("accept", "application/json")
            .json(body)
            .send()
            .await;
        let answer = match sent {
            Err(e) => Answer::Indeterminate(describe_transport_error(&e)),
            Ok(res) => {
                let status = res.status();
                match res.bytes().await {
                    Err(e) => Answer::Indeterminate(describe_transport_error(&e)),
                    Ok(bytes) => interpret(status.as_u16(), &bytes, parse),
                }
            }
        };
        let result = match &answer {
            Answer::Ok(_) => "ok",
            Answer::Refused(_) => "refused",
            Answer::Indeterminate(_) => "indeterminate",
        };
        if let Some(m) = &self.metrics {
            m.calls.with_label_values(&[endpoint, result]).inc();
            m.duration
                .with_label_values(&[endpoint])
                .observe(started.elapsed().as_secs_f64());
        }
        match &answer {
            Answer::Indeterminate(why) => {
                tracing::warn!(endpoint, reason = %why, "zarinpal call indeterminate");
            }
            Answer::Refused(e) => {
                tracing::info!(endpoint, code = e.code, message = %e.message, "zarinpal refused");
            }
            Answer::Ok(_) => {}
        }
        answer
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connect error".to_owned()
    } else {
        // reqwest's message names the URL (the base, never the merchant id, which is in the body).
        format!("transport error: {e}")
    }
}

/// Reads one answer of any endpoint (public for the parser's unit tests).
pub fn interpret<T, F>(status: u16, body: &[u8], parse: F) -> Answer<T>
where
    F: FnOnce(&Value) -> Option<T>,
{
    if status >= 500 {
        return Answer::Indeterminate(format!("HTTP {status}"));
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Answer::Indeterminate(format!("HTTP {status} with a body that is not JSON"));
    };
    let data = json.get("data").unwrap_or(&Value::Null);
    let errors = json.get("errors").unwrap_or(&Value::Null);
    let data_code = int_field(data, "code");
    // The error object, when there is one (not `[]`, not `{}`, not null).
    let error_code = int_field(errors, "code");
    if let Some(code) = error_code {
        return Answer::Refused(GatewayError {
            code,
            message: str_field(errors, "message").unwrap_or_default(),
            validations: validations(errors),
        });
    }
    match data_code {
        Some(100 | 101) if status == 200 => match parse(data) {
            Some(v) => Answer::Ok(v),
            None => Answer::Indeterminate("success answer without its fields".to_owned()),
        },
        // A failure code in `data` (seen on some older answers) is still a failure code.
        Some(code) if code < 0 => Answer::Refused(GatewayError {
            code,
            message: str_field(data, "message").unwrap_or_default(),
            validations: Vec::new(),
        }),
        _ => Answer::Indeterminate(format!("HTTP {status} without a recognisable envelope")),
    }
}

fn validations(errors: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push_obj = |obj: &serde_json::Map<String, Value>| {
        for (k, v) in obj {
            let msg = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            out.push((k.clone(), msg));
        }
    };
    match errors.get("validations") {
        Some(Value::Array(list)) => {
            for item in list {
                if let Value::Object(obj) = item {
                    push_obj(obj);
                }
            }
        }
        Some(Value::Object(obj)) => push_obj(obj),
        _ => {}
    }
    out
}

/// An integer given as a number or a numeric string.
pub fn int_field(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What billing does with a verify answer (the table of docs/payments.md).
#[derive(Debug, Clone, PartialEq)]
pub enum VerifyOutcome {
    /// 100 or 101: paid and verified; credit exactly once.
    Succeeded {
        code: i64,
        ref_id: Option<i64>,
        card_pan: Option<String>,
    },
    /// -50: the paid amount differs from ours. Never credit; a person looks at it.
    AmountMismatch,
    /// -51: not a successful paid session (ask inquiry what it is).
    NotPaid,
    /// -53/-54/-55: not our session, invalid or unknown. No credit.
    Rejected(i64),
    /// -10, -11, -14..-17: our configuration is wrong. Stays pending; alert.
    ConfigurationFault(i64),
    /// Nothing learned (timeouts, 5xx, -9/-12/-52 and unknown codes): look again later.
    Retry(String),
}

impl VerifyOutcome {
    pub fn from_answer(answer: Answer<VerifyOk>) -> Self {
        match answer {
            Answer::Ok(ok) => Self::Succeeded {
                code: ok.code,
                ref_id: ok.ref_id,
                card_pan: ok.card_pan,
            },
            Answer::Indeterminate(why) => Self::Retry(why),
            Answer::Refused(e) => match e.code {
                -50 => Self::AmountMismatch,
                -51 => Self::NotPaid,
                -55..=-53 => Self::Rejected(e.code),
                -17..=-14 | -11 | -10 => Self::ConfigurationFault(e.code),
                code => Self::Retry(format!("gateway code {code}: {}", e.message)),
            },
        }
    }
}

/// Why `request.json` refused, as the customer should hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRefusal {
    /// -13 / -12: the gateway is busy for us; try later.
    RetryLater,
    /// -10, -11, -14..-17: our configuration; an operator must act.
    Configuration,
    /// -41: above the maximum (we check before calling, so this is a bug or a changed limit).
    AmountOutOfRange,
    /// -9, -30..-40 and anything else: the request was wrong.
    BadRequest,
}

impl RequestRefusal {
    pub fn of(code: i64) -> Self {
        match code {
            -12 | -13 => Self::RetryLater,
            -17..=-14 | -11 | -10 => Self::Configuration,
            -41 => Self::AmountOutOfRange,
            _ => Self::BadRequest,
        }
    }
}

/// A card number as Zarinpal masks it; a full number (which the gateway never sends) is masked
/// here rather than stored, and anything else that is not digits and `*` is dropped.
pub fn masked_card(pan: Option<&str>) -> Option<String> {
    let pan = pan?.trim();
    if pan.is_empty() || pan.len() > 32 || !pan.chars().all(|c| c.is_ascii_digit() || c == '*') {
        return None;
    }
    if pan.chars().all(|c| c.is_ascii_digit()) {
        if pan.len() < 10 {
            return None;
        }
        return Some(format!(
            "{}{}{}",
            &pan[..6],
            "*".repeat(pan.len() - 10),
            &pan[pan.len() - 4..]
        ));
    }
    Some(pan.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn verify(status: u16, body: &str) -> VerifyOutcome {
        VerifyOutcome::from_answer(interpret(status, body.as_bytes(), |d| {
            Some(VerifyOk {
                code: int_field(d, "code")?,
                ref_id: int_field(d, "ref_id"),
                card_pan: str_field(d, "card_pan"),
            })
        }))
    }

    #[test]
    fn success_and_repeat() {
        let ok = verify(
            200,
            r#"{"data":{"code":100,"message":"Verified","card_hash":"X","card_pan":"502229******5995","ref_id":201,"fee_type":"Merchant","fee":0},"errors":[]}"#,
        );
        assert_eq!(
            ok,
            VerifyOutcome::Succeeded {
                code: 100,
                ref_id: Some(201),
                card_pan: Some("502229******5995".into())
            }
        );
        // Code and ref id as strings.
        let again = verify(
            200,
            r#"{"data":{"code":"101","message":"Verified","ref_id":"201"},"errors":{}}"#,
        );
        assert!(matches!(
            again,
            VerifyOutcome::Succeeded {
                code: 101,
                ref_id: Some(201),
                ..
            }
        ));
    }

    #[test]
    fn error_codes_map_to_outcomes() {
        let err = |code: &str| {
            verify(
                422,
                &format!(
                    r#"{{"data":[],"errors":{{"code":{code},"message":"m","validations":[]}}}}"#
                ),
            )
        };
        assert_eq!(err("-50"), VerifyOutcome::AmountMismatch);
        assert_eq!(err("-51"), VerifyOutcome::NotPaid);
        assert_eq!(err("\"-54\""), VerifyOutcome::Rejected(-54));
        assert_eq!(err("-53"), VerifyOutcome::Rejected(-53));
        assert_eq!(err("-11"), VerifyOutcome::ConfigurationFault(-11));
        assert!(matches!(err("-9"), VerifyOutcome::Retry(_)));
        assert!(matches!(err("-12"), VerifyOutcome::Retry(_)));
        assert!(matches!(err("-52"), VerifyOutcome::Retry(_)));
        // data as {} instead of []
        assert_eq!(
            verify(
                404,
                r#"{"data":{},"errors":{"code":-55,"message":"not found"}}"#
            ),
            VerifyOutcome::Rejected(-55)
        );
    }

    #[test]
    fn indeterminate_answers_are_never_failures() {
        assert!(matches!(
            verify(502, r#"{"data":[],"errors":{"code":-51}}"#),
            VerifyOutcome::Retry(_)
        ));
        assert!(matches!(
            verify(200, "<html>maintenance</html>"),
            VerifyOutcome::Retry(_)
        ));
        assert!(matches!(verify(404, "Not Found"), VerifyOutcome::Retry(_)));
        assert!(matches!(verify(200, "{}"), VerifyOutcome::Retry(_)));
    }

    #[test]
    fn validations_are_flattened() {
        let a: Answer<()> = interpret(
            422,
            br#"{"data":[],"errors":{"code":-9,"message":"The input params invalid, validation error.","validations":[{"merchant_id":"The merchant id field is required."},{"amount":"The amount must be at least 1000."}]}}"#,
            |_| Some(()),
        );
        let Answer::Refused(e) = a else {
            panic!("refused expected")
        };
        assert_eq!(e.code, -9);
        assert_eq!(e.validations.len(), 2);
        assert_eq!(e.validations[0].0, "merchant_id");
    }

    #[test]
    fn request_refusals() {
        assert_eq!(RequestRefusal::of(-13), RequestRefusal::RetryLater);
        assert_eq!(RequestRefusal::of(-15), RequestRefusal::Configuration);
        assert_eq!(RequestRefusal::of(-41), RequestRefusal::AmountOutOfRange);
        assert_eq!(RequestRefusal::of(-9), RequestRefusal::BadRequest);
        assert_eq!(RequestRefusal::of(-35), RequestRefusal::BadRequest);
    }

    #[test]
    fn cards_are_stored_masked() {
        assert_eq!(
            masked_card(Some("502229******5995")).as_deref(),
            Some("502229******5995")
        );
        assert_eq!(
            masked_card(Some("5022291234565995")).as_deref(),
            Some("502229******5995")
        );
        assert_eq!(masked_card(Some("<script>")), None);
        assert_eq!(masked_card(None), None);
    }

    #[test]
    fn merchant_is_masked() {
        assert_eq!(
            mask_merchant("1344b5d4-0048-11e8-94db-005056a205be"),
            "1344…05be"
        );
        let c = ZarinpalClient::new(
            "http://x",
            Secret::new("1344b5d4-0048-11e8-94db-005056a205be"),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("0048-11e8"));
    }
}
