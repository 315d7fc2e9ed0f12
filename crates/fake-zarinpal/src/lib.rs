//! A faithful fake of Zarinpal's v4 API for local development and tests (README.md, the
//! payment flow): the same paths, JSON envelopes and codes as the real gateway, sessions in
//! memory. Billing links it only in its tests, so this crate reads the wire format itself
//! rather than through billing's client.
//!
//! - `POST /pg/v4/payment/request.json` → 100 + `authority`; -9 with `validations` for a bad
//!   request; -41 above 1,000,000,000 Rial.
//! - `GET /pg/StartPay/{authority}` marks the session paid and redirects to its callback with
//!   `Status=OK`. `?status=` chooses otherwise: `NOK` (payer canceled), `unpaid` (the bank
//!   declined but the redirect still says OK), `in_bank` (still at the bank, redirect says OK).
//! - `POST /pg/v4/payment/verify.json` → 100 the first time, 101 after (or at once when
//!   auto-verify is on), -50 for a wrong amount, -51 for an unpaid session, -53 for another
//!   merchant's session, -54 for an unknown authority, -9 for a bad request.
//! - `inquiry.json` reports the session as the bank has it (`IN_BANK` until the payer pays, or
//!   cancels or is declined at StartPay); `unVerified.json` and `reverse.json` as documented.
//! - Test controls: hang the next verifies (processed, then answered late: the nastiest kind of
//!   timeout), auto-verify, fail the next request with a code. In-process through
//!   [`FakeZarinpal`], or over HTTP at `POST /__fake/controls` and `GET /__fake/sessions/{a}`.
//!
//! Errors answer HTTP 422 (404 for an unknown authority) with `{"data": [], "errors": {code,
//! message, validations}}`, as the real gateway does.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use actix_web::{
    HttpResponse,
    dev::{Server, ServerHandle},
    http::StatusCode,
    web,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Amount bounds of `request.json`, in Rial, as the gateway documents them.
pub const MIN_AMOUNT: i64 = 10_000;
pub const MAX_AMOUNT: i64 = 1_000_000_000;

/// The gateway's merchant ids are UUIDs; it refuses anything else with -9.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A request's JSON body (always an object: see `body_object`).
type Body = serde_json::Map<String, Value>;

/// An integer the way the gateway accepts one: a JSON number (integral) or a numeric string.
fn int_field(body: &Body, key: &str) -> Option<i64> {
    match body.get(key)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The session states of the gateway (what `inquiry.json` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    /// Created, the payer not (yet) through the bank.
    InBank,
    Paid,
    Verified,
    Failed,
    Reversed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub authority: String,
    pub merchant_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub callback_url: String,
    pub state: SessionState,
    pub ref_id: Option<i64>,
    pub card_pan: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    /// Every verify call for this authority.
    pub verify_calls: u32,
    /// Verify answers with code 100 (a correct client sees at most one).
    pub verified_100: u32,
    /// Every inquiry call for this authority.
    pub inquiry_calls: u32,
}

/// Behaviour switches for tests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Controls {
    /// The next `hang_verify_count` verifies are processed, then answered after this long.
    pub hang_verify_ms: u64,
    pub hang_verify_count: u32,
    /// Paid sessions answer 101 on their first verify (an auto-verifying terminal).
    pub auto_verify: bool,
    /// The next request answers this error code (e.g. -13, -11).
    pub request_error_code: Option<i64>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    next_ref: i64,
    controls: Controls,
}

#[derive(Default)]
pub struct FakeState {
    inner: Mutex<Inner>,
}

impl FakeState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-written in a way that
        // matters to a fake; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake, in-process.
pub struct FakeZarinpal {
    pub base_url: String,
    pub port: u16,
    state: Arc<FakeState>,
    handle: ServerHandle,
}

impl FakeZarinpal {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let (fake, server) = Self::serve(listener, Controls::default())?;
        tokio::spawn(server);
        Ok(fake)
    }

    /// The server future and its handle (the binary awaits it).
    pub fn serve(listener: TcpListener, controls: Controls) -> anyhow::Result<(Self, Server)> {
        let port = listener.local_addr()?.port();
        let state = Arc::new(FakeState::default());
        {
            let mut inner = state.lock();
            inner.controls = controls;
            inner.next_ref = 201;
        }
        let data = web::Data::from(state.clone());
        let server = zimmer_service::fake::server(listener, move |cfg| {
            cfg.app_data(data.clone())
                .app_data(web::PayloadConfig::default().limit(64 * 1024));
            configure(cfg);
        })?;
        let fake = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            handle: server.handle(),
        };
        Ok((fake, server))
    }

    pub fn controls(&self) -> Controls {
        self.state.lock().controls.clone()
    }

    pub fn set_controls(&self, controls: Controls) {
        self.state.lock().controls = controls;
    }

    /// The next `count` verifies are processed, then answered only after `delay`.
    pub fn hang_next_verifies(&self, count: u32, delay: Duration) {
        let mut inner = self.state.lock();
        inner.controls.hang_verify_count = count;
        inner.controls.hang_verify_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    }

    pub fn set_auto_verify(&self, on: bool) {
        self.state.lock().controls.auto_verify = on;
    }

    pub fn fail_next_request(&self, code: i64) {
        self.state.lock().controls.request_error_code = Some(code);
    }

    pub fn session(&self, authority: &str) -> Option<Session> {
        self.state.lock().sessions.get(authority).cloned()
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.state.lock().sessions.values().cloned().collect()
    }

    /// The payer pays without a browser (as StartPay does, minus the redirect): a lost callback.
    pub fn pay(&self, authority: &str) -> bool {
        let mut inner = self.state.lock();
        let next_card = card_pan();
        match inner.sessions.get_mut(authority) {
            Some(s) if s.state == SessionState::InBank => {
                s.state = SessionState::Paid;
                s.paid_at = Some(Utc::now());
                s.card_pan = Some(next_card);
                true
            }
            _ => false,
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/pg/v4/payment/request.json", web::post().to(request))
        .route("/pg/v4/payment/verify.json", web::post().to(verify))
        .route("/pg/v4/payment/inquiry.json", web::post().to(inquiry))
        .route("/pg/v4/payment/unVerified.json", web::post().to(unverified))
        .route("/pg/v4/payment/reverse.json", web::post().to(reverse))
        .route("/pg/StartPay/{authority}", web::get().to(start_pay))
        .route("/pg/StartPay/{authority}", web::post().to(start_pay_form))
        .route("/__fake/controls", web::get().to(get_controls))
        .route("/__fake/controls", web::post().to(set_controls))
        .route("/__fake/sessions/{authority}", web::get().to(get_session))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(healthz))
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(json!({"data": [], "errors": {"code": -9, "message": "Not found", "validations": []}}))
        }));
}

fn card_pan() -> String {
    "502229******5995".to_owned()
}

/// `A` and 35 alphanumerics, like the real authorities.
fn new_authority() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut tail = Vec::new();
    while n > 0 {
        tail.push(DIGITS[(n % 62) as usize]);
        n /= 62;
    }
    let tail: String = tail.into_iter().rev().map(char::from).collect();
    format!("A{tail:0>35}")
}

fn error(status: StatusCode, code: i64, message: &str, validations: Vec<Value>) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "data": [],
        "errors": { "code": code, "message": message, "validations": validations },
    }))
}

/// A 422 refusal without validation messages (the gateway's business errors).
fn refused(code: i64, message: &str) -> HttpResponse {
    error(StatusCode::UNPROCESSABLE_ENTITY, code, message, vec![])
}

fn validation_error(validations: Vec<Value>) -> HttpResponse {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        -9,
        "The input params invalid, validation error.",
        validations,
    )
}

fn ok(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "data": data, "errors": [] }))
}

/// The JSON body, or the -9 answer for one that is not an object.
fn body_object(raw: &[u8]) -> Result<Body, Box<HttpResponse>> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Box::new(validation_error(vec![
            json!({"body": "The request body must be a JSON object."}),
        ]))),
    }
}

/// The merchant's session of `authority`, or the gateway's answer when it has none: -54 for
/// an unknown authority, -53 for another merchant's session.
fn merchant_session<'a>(
    inner: &'a mut Inner,
    merchant_id: &str,
    authority: &str,
) -> Result<&'a mut Session, Box<HttpResponse>> {
    match inner.sessions.get_mut(authority) {
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            -54,
            "Invalid authority.",
            vec![],
        ))),
        Some(s) if s.merchant_id != merchant_id => Err(Box::new(refused(
            -53,
            "Session is not this merchant_id session.",
        ))),
        Some(s) => Ok(s),
    }
}

/// The `merchant_id` and `authority` of a request that names only a session (inquiry,
/// reverse), or the answer to a malformed one.
fn merchant_and_authority(raw: &[u8]) -> Result<(String, String), Box<HttpResponse>> {
    let body = body_object(raw)?;
    let mut v = Vec::new();
    let merchant_id = merchant(&body, &mut v);
    let authority = authority(&body, &mut v);
    match (merchant_id, authority) {
        (Some(m), Some(a)) => Ok((m, a)),
        _ => Err(Box::new(validation_error(v))),
    }
}

/// The body of a call about an amount (request, verify) with its `merchant_id` and `amount`
/// checked (their validation messages go to `v`), or the answer to a non-object.
fn merchant_and_amount(
    raw: &[u8],
    v: &mut Vec<Value>,
) -> Result<(Body, Option<String>, Option<i64>), Box<HttpResponse>> {
    let body = body_object(raw)?;
    let merchant_id = merchant(&body, v);
    let amount = amount(&body, v);
    Ok((body, merchant_id, amount))
}

/// The answer to a call that names one of the merchant's sessions (inquiry, reverse):
/// `answer`'s, or the gateway's to a malformed request or a session that is not there.
fn on_session(
    state: &FakeState,
    raw: &[u8],
    answer: impl FnOnce(&mut Session) -> HttpResponse,
) -> HttpResponse {
    let (merchant_id, authority) = match merchant_and_authority(raw) {
        Ok(pair) => pair,
        Err(res) => return *res,
    };
    let mut inner = state.lock();
    match merchant_session(&mut inner, &merchant_id, &authority) {
        Ok(s) => answer(s),
        Err(res) => *res,
    }
}

fn merchant(body: &Body, v: &mut Vec<Value>) -> Option<String> {
    match body.get("merchant_id").and_then(Value::as_str) {
        None => {
            v.push(json!({"merchant_id": "The merchant id field is required."}));
            None
        }
        Some(m) if !is_uuid(m) => {
            v.push(json!({"merchant_id": "The merchant id must be 36 characters."}));
            None
        }
        Some(m) => Some(m.to_owned()),
    }
}

fn amount(body: &Body, v: &mut Vec<Value>) -> Option<i64> {
    match int_field(body, "amount") {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            v.push(json!({"amount": "The amount must be a positive integer."}));
            None
        }
        None => {
            v.push(json!({"amount": "The amount field is required."}));
            None
        }
    }
}

fn authority(body: &Body, v: &mut Vec<Value>) -> Option<String> {
    match body.get("authority").and_then(Value::as_str) {
        Some(a) if !a.trim().is_empty() => Some(a.trim().to_owned()),
        _ => {
            v.push(json!({"authority": "The authority field is required."}));
            None
        }
    }
}

async fn request(state: web::Data<FakeState>, raw: web::Bytes) -> HttpResponse {
    let mut v = Vec::new();
    let (body, merchant_id, amount) = match merchant_and_amount(&raw, &mut v) {
        Ok(checked) => checked,
        Err(res) => return *res,
    };
    let currency = match body.get("currency") {
        None | Some(Value::Null) => "IRR".to_owned(),
        Some(Value::String(c)) if c == "IRR" || c == "IRT" => c.clone(),
        Some(_) => {
            v.push(json!({"currency": "The selected currency is invalid."}));
            "IRR".to_owned()
        }
    };
    // Rial bounds (a Toman amount is a tenth of the Rial one).
    let rial = amount.map(|a| if currency == "IRT" { a * 10 } else { a });
    if let Some(r) = rial
        && r < MIN_AMOUNT
    {
        v.push(json!({"amount": format!("The amount must be at least {MIN_AMOUNT} Rial.")}));
    }
    let description = match body.get("description").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() && d.chars().count() <= 500 => d.to_owned(),
        Some(d) if d.chars().count() > 500 => {
            v.push(
                json!({"description": "The description may not be greater than 500 characters."}),
            );
            String::new()
        }
        _ => {
            v.push(json!({"description": "The description field is required."}));
            String::new()
        }
    };
    let callback_url = match body.get("callback_url").and_then(Value::as_str) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_owned(),
        Some(_) => {
            v.push(json!({"callback_url": "The callback url format is invalid."}));
            String::new()
        }
        None => {
            v.push(json!({"callback_url": "The callback url field is required."}));
            String::new()
        }
    };
    if !v.is_empty() {
        return validation_error(v);
    }
    let (Some(merchant_id), Some(amount), Some(rial)) = (merchant_id, amount, rial) else {
        return validation_error(vec![]);
    };
    if rial > MAX_AMOUNT {
        return refused(-41, "Amount is more than the maximum allowed.");
    }
    let mut inner = state.lock();
    if let Some(code) = inner.controls.request_error_code.take() {
        return refused(code, "Request refused (fake control).");
    }
    let authority = new_authority();
    inner.sessions.insert(
        authority.clone(),
        Session {
            authority: authority.clone(),
            merchant_id,
            amount: rial,
            currency,
            description,
            callback_url,
            state: SessionState::InBank,
            ref_id: None,
            card_pan: None,
            created_at: Utc::now(),
            paid_at: None,
            verified_at: None,
            verify_calls: 0,
            verified_100: 0,
            inquiry_calls: 0,
        },
    );
    let _ = amount;
    ok(json!({
        "code": 100,
        "message": "Success",
        "authority": authority,
        "fee_type": "Merchant",
        "fee": 0,
    }))
}

async fn verify(state: web::Data<FakeState>, raw: web::Bytes) -> HttpResponse {
    let mut v = Vec::new();
    let (body, merchant_id, amount) = match merchant_and_amount(&raw, &mut v) {
        Ok(checked) => checked,
        Err(res) => return *res,
    };
    let authority = authority(&body, &mut v);
    let (Some(merchant_id), Some(amount), Some(authority)) = (merchant_id, amount, authority)
    else {
        return validation_error(v);
    };
    // Decide and apply under the lock; sleep (if told to hang) after, without it.
    let (response, hang) = {
        let mut inner = state.lock();
        let hang = if inner.controls.hang_verify_count > 0 {
            inner.controls.hang_verify_count -= 1;
            Some(Duration::from_millis(inner.controls.hang_verify_ms))
        } else {
            None
        };
        let auto_verify = inner.controls.auto_verify;
        inner.next_ref += 1;
        let next_ref = inner.next_ref;
        let response = match merchant_session(&mut inner, &merchant_id, &authority) {
            Err(res) => *res,
            Ok(s) => {
                s.verify_calls += 1;
                match s.state {
                    SessionState::Paid | SessionState::Verified if s.amount != amount => {
                        refused(-50, "Session is not valid, amounts values is not the same.")
                    }
                    SessionState::Paid => {
                        s.state = SessionState::Verified;
                        s.verified_at = Some(Utc::now());
                        s.ref_id = Some(next_ref);
                        let code = if auto_verify {
                            101
                        } else {
                            s.verified_100 += 1;
                            100
                        };
                        verified(code, s)
                    }
                    SessionState::Verified => verified(101, s),
                    SessionState::InBank | SessionState::Failed | SessionState::Reversed => {
                        refused(-51, "Session is not valid, session is not active paid try.")
                    }
                }
            }
        };
        (response, hang)
    };
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    response
}

fn verified(code: i64, s: &Session) -> HttpResponse {
    ok(json!({
        "code": code,
        "message": if code == 100 { "Verified" } else { "Verified before" },
        "card_hash": "1EBE3EBEBE35C7EC0F8D6EE4F2F859107A87822CA179BC9528767EA7B5489B69",
        "card_pan": s.card_pan.clone().unwrap_or_else(card_pan),
        "ref_id": s.ref_id,
        "fee_type": "Merchant",
        "fee": 0,
    }))
}

async fn inquiry(state: web::Data<FakeState>, raw: web::Bytes) -> HttpResponse {
    // The state as the bank has it: a payer's browser saying NOK does not change it (a
    // session is FAILED only when the payer canceled or the bank declined at StartPay).
    on_session(&state, &raw, |s| {
        s.inquiry_calls += 1;
        ok(json!({
            "code": 100,
            "message": "Success",
            "status": serde_json::to_value(s.state).unwrap_or(Value::Null),
        }))
    })
}

async fn unverified(state: web::Data<FakeState>, raw: web::Bytes) -> HttpResponse {
    let body = match body_object(&raw) {
        Ok(b) => b,
        Err(res) => return *res,
    };
    let mut v = Vec::new();
    let Some(merchant_id) = merchant(&body, &mut v) else {
        return validation_error(v);
    };
    let inner = state.lock();
    let mut paid: Vec<&Session> = inner
        .sessions
        .values()
        .filter(|s| s.merchant_id == merchant_id && s.state == SessionState::Paid)
        .collect();
    // The latest 100 only, as the real one.
    paid.sort_by_key(|s| std::cmp::Reverse(s.paid_at));
    let list: Vec<Value> = paid
        .into_iter()
        .take(100)
        .map(|s| {
            json!({
                "authority": s.authority,
                "amount": s.amount,
                "callback_url": s.callback_url,
                "referer": "",
                "date": s.paid_at.unwrap_or(s.created_at).format("%Y-%m-%d %H:%M:%S").to_string(),
            })
        })
        .collect();
    ok(json!({ "code": 100, "message": "Success", "authorities": list }))
}

async fn reverse(state: web::Data<FakeState>, raw: web::Bytes) -> HttpResponse {
    on_session(&state, &raw, |s| {
        let expired = s
            .verified_at
            .is_some_and(|t| Utc::now() - t > chrono::Duration::minutes(30));
        if s.state != SessionState::Verified {
            refused(-61, "Session is not in success status.")
        } else if expired {
            refused(-63, "Maximum time for reverse this session is expired.")
        } else {
            s.state = SessionState::Reversed;
            ok(json!({ "code": 100, "message": "Reversed" }))
        }
    })
}

#[derive(Debug, Deserialize)]
struct StartPayQuery {
    #[serde(default)]
    status: Option<String>,
}

async fn start_pay(
    state: web::Data<FakeState>,
    path: web::Path<String>,
    query: web::Query<StartPayQuery>,
) -> HttpResponse {
    start_pay_as(&state, &path, query.status.as_deref())
}

async fn start_pay_form(
    state: web::Data<FakeState>,
    path: web::Path<String>,
    form: web::Form<StartPayQuery>,
) -> HttpResponse {
    start_pay_as(&state, &path, form.status.as_deref())
}

/// What the payer does at the bank, then the redirect back to the merchant.
fn start_pay_as(state: &FakeState, authority: &str, choice: Option<&str>) -> HttpResponse {
    let mut inner = state.lock();
    let Some(s) = inner.sessions.get_mut(authority) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Invalid authority");
    };
    let choice = choice.unwrap_or("OK").to_ascii_lowercase();
    let status = if s.state == SessionState::InBank {
        match choice.as_str() {
            "nok" | "cancel" | "canceled" => {
                s.state = SessionState::Failed;
                "NOK"
            }
            "unpaid" | "failed" => {
                s.state = SessionState::Failed;
                "OK"
            }
            "in_bank" | "inbank" | "pending" => "OK",
            _ => {
                s.state = SessionState::Paid;
                s.paid_at = Some(Utc::now());
                s.card_pan = Some(card_pan());
                "OK"
            }
        }
    } else {
        // A second visit: the outcome is already decided.
        match s.state {
            SessionState::Paid | SessionState::Verified => "OK",
            _ => "NOK",
        }
    };
    let sep = if s.callback_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{sep}Authority={}&Status={status}",
        s.callback_url, s.authority
    );
    HttpResponse::Found()
        .insert_header(("Location", location))
        .finish()
}

async fn get_controls(state: web::Data<FakeState>) -> HttpResponse {
    HttpResponse::Ok().json(state.lock().controls.clone())
}

async fn set_controls(state: web::Data<FakeState>, body: web::Json<Controls>) -> HttpResponse {
    state.lock().controls = body.into_inner();
    HttpResponse::Ok().json(state.lock().controls.clone())
}

async fn get_session(state: web::Data<FakeState>, path: web::Path<String>) -> HttpResponse {
    match state.lock().sessions.get(path.as_str()) {
        Some(s) => HttpResponse::Ok().json(s),
        None => HttpResponse::NotFound().json(json!({"detail": "no such session"})),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_look_real() {
        let a = new_authority();
        assert_eq!(a.len(), 36);
        assert!(a.starts_with('A'));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_authority());
    }

    /// The code of an answer: `data.code` on success, `errors.code` on a refusal.
    fn code(answer: &Value) -> i64 {
        answer["data"]["code"]
            .as_i64()
            .or_else(|| answer["errors"]["code"].as_i64())
            .unwrap_or(0)
    }

    #[actix_web::test]
    async fn inquiry_and_reverse_answer_for_the_merchants_own_session() {
        use actix_web::{App, test};
        let state = web::Data::new(FakeState::default());
        let app = test::init_service(App::new().app_data(state.clone()).configure(configure)).await;
        let merchant = "0123abcd-0000-4000-8000-00000000000a";
        let other = "0123abcd-0000-4000-8000-00000000000b";
        let call = async |path: &str, body: Value| -> Value {
            let req = test::TestRequest::post()
                .uri(&format!("/pg/v4/payment/{path}.json"))
                .set_json(body)
                .to_request();
            test::call_and_read_body_json(&app, req).await
        };
        let created = call(
            "request",
            json!({"merchant_id": merchant, "amount": 20_000, "description": "x",
                   "callback_url": "https://shop.example/back"}),
        )
        .await;
        assert_eq!(code(&created), 100, "{created}");
        let authority = created["data"]["authority"].as_str().unwrap_or_default();
        let session = json!({"merchant_id": merchant, "authority": authority});

        let inquiry = call("inquiry", session.clone()).await;
        assert_eq!(inquiry["data"]["status"], "IN_BANK", "{inquiry}");
        let theirs = json!({"merchant_id": other, "authority": authority});
        assert_eq!(code(&call("inquiry", theirs.clone()).await), -53);
        let unknown = json!({"merchant_id": merchant, "authority": "A0"});
        assert_eq!(code(&call("inquiry", unknown).await), -54);
        assert_eq!(code(&call("inquiry", json!({})).await), -9);
        assert_eq!(
            code(&call("reverse", session.clone()).await),
            -61,
            "not verified"
        );

        if let Some(s) = state.lock().sessions.get_mut(authority) {
            s.state = SessionState::Paid;
        }
        let verify = json!({"merchant_id": merchant, "authority": authority, "amount": 20_000});
        assert_eq!(code(&call("verify", verify).await), 100);
        assert_eq!(code(&call("reverse", theirs).await), -53);
        assert_eq!(code(&call("reverse", session.clone()).await), 100);
        assert_eq!(
            code(&call("reverse", session.clone()).await),
            -61,
            "reversed once"
        );
        let inquiry = call("inquiry", session).await;
        assert_eq!(inquiry["data"]["status"], "REVERSED", "{inquiry}");
    }
}
