//! A faithful fake of OpenAI's `POST /v1/chat/completions` for local development and tests
//! (admin's key test, docs/panels.md "OpenAI keys: per-automation limits and test"): the same
//! path, `Authorization: Bearer <key>` check and JSON shapes as the real API, nothing stored.
//!
//! - A key in the configured set → 200 with the chat completion shape (`id`, `object`,
//!   `created`, `model`, `choices`, `usage`); `model` is the requested one, or the configured
//!   `answer_model` (the real API answers a dated snapshot, e.g. `gpt-4o-mini-2024-07-18`).
//! - No or another key → 401 `{"error": {message, type, param, code: "invalid_api_key"}}`,
//!   the message naming the key masked as the real API does (`sk-ab***...wxyz`).
//! - A key in the `forbidden` set → 403 (OpenAI's answer for a key without access to the
//!   project or model).
//! - A body without `model` or a non-empty `messages` array → 400 `invalid_request_error`.
//!
//! Test controls: [`FakeOpenAi::calls`] counts every request that reached the endpoint (the
//! key test of a disabled key must make none); [`FakeOpenAi::set_delay`] answers late.

use std::{
    collections::HashSet,
    net::TcpListener,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actix_web::{
    HttpRequest, HttpResponse,
    dev::{Server, ServerHandle},
    web,
};
use serde_json::{Value, json};

/// What the fake accepts.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// Keys answered with a completion.
    pub valid_keys: HashSet<String>,
    /// Keys answered 403 (a key OpenAI knows but that may not use the model).
    pub forbidden_keys: HashSet<String>,
    /// The `model` of answers; the requested one when `None`.
    pub answer_model: Option<String>,
}

#[derive(Debug, Default)]
struct FakeState {
    config: Mutex<FakeConfig>,
    calls: AtomicU64,
    delay_ms: AtomicU64,
}

impl FakeState {
    fn config(&self) -> MutexGuard<'_, FakeConfig> {
        // A panicking test thread poisons nothing we rely on: the data is plain.
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake, in-process (tests) or as the `zimmer-fake-openai` binary.
#[derive(Clone)]
pub struct FakeOpenAi {
    /// The API base as clients configure it, ending in `/v1` (`OPENAI_BASE_URL`).
    pub base_url: String,
    pub port: u16,
    state: Arc<FakeState>,
    handle: ServerHandle,
}

impl std::fmt::Debug for FakeOpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenAi")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeOpenAi {
    /// On a free local port, served by the current tokio runtime.
    pub async fn start(config: FakeConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (fake, server) = Self::serve(listener, config)?;
        tokio::spawn(server);
        Ok(fake)
    }

    /// A fake accepting exactly `keys`.
    pub async fn with_keys(keys: &[&str]) -> anyhow::Result<Self> {
        Self::start(FakeConfig {
            valid_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..FakeConfig::default()
        })
        .await
    }

    /// The server future and the fake (the binary awaits the future).
    pub fn serve(listener: TcpListener, config: FakeConfig) -> anyhow::Result<(Self, Server)> {
        let port = listener.local_addr()?.port();
        let state = Arc::new(FakeState {
            config: Mutex::new(config),
            ..FakeState::default()
        });
        let data = web::Data::from(state.clone());
        let server = zimmer_service::fake::server(listener, move |cfg| {
            cfg.app_data(data.clone())
                .app_data(web::PayloadConfig::default().limit(1024 * 1024))
                .route("/v1/chat/completions", web::post().to(chat_completions));
        })?;
        let fake = Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            port,
            state,
            handle: server.handle(),
        };
        Ok((fake, server))
    }

    /// Requests that reached `/v1/chat/completions`, answered or refused.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn add_valid_key(&self, key: &str) {
        self.state.config().valid_keys.insert(key.to_owned());
    }

    pub fn set_config(&self, config: FakeConfig) {
        *self.state.config() = config;
    }

    /// Every answer from now on waits `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    }))
}

/// `sk-ab***...wxyz`, the way OpenAI's 401 message names a key.
pub fn masked_like_openai(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 8 {
        return "***".to_owned();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***...{tail}")
}

async fn chat_completions(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<FakeState>,
) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let (valid, forbidden, answer_model) = {
        let c = state.config();
        (
            c.valid_keys.contains(&key),
            c.forbidden_keys.contains(&key),
            c.answer_model.clone(),
        )
    };
    if key.is_empty() {
        return error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        );
    }
    if forbidden {
        return error(
            403,
            "You are not allowed to sample from this model",
            "invalid_request_error",
            Some("model_not_found"),
        );
    }
    if !valid {
        return error(
            401,
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                masked_like_openai(&key)
            ),
            "invalid_request_error",
            Some("invalid_api_key"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        );
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return error(
            400,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
        );
    };
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty());
    let Some(messages) = messages else {
        return error(
            400,
            "Missing required parameter: 'messages'.",
            "invalid_request_error",
            Some("missing_required_parameter"),
        );
    };
    let max_tokens = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_i64)
        .unwrap_or(16)
        .max(1);
    let prompt_tokens: i64 = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(|c| i64::try_from(c.split_whitespace().count()).unwrap_or(0) + 4)
        .sum();
    let completion_tokens = max_tokens.min(1);
    HttpResponse::Ok().json(json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": answer_model.unwrap_or_else(|| model.to_owned()),
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "Hi", "refusal": null },
            "logprobs": null,
            "finish_reason": "length"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        },
        "system_fingerprint": "fp_zimmer_fake"
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn answers_valid_keys_and_refuses_others_like_openai() {
        let fake = FakeOpenAi::with_keys(&["sk-test-valid-1234"])
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/chat/completions", fake.base_url);
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1});
        let chat = async |key: &str, body: &Value| {
            let request = http.post(&url).bearer_auth(key).json(body);
            request.send().await.unwrap()
        };

        let ok = chat("sk-test-valid-1234", &body).await;
        assert_eq!(ok.status(), 200);
        let v: Value = ok.json().await.unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["usage"]["completion_tokens"], 1);

        let bad = chat("sk-test-wrong-9876", &body).await;
        assert_eq!(bad.status(), 401);
        let v: Value = bad.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("sk-te***...9876") && !msg.contains("sk-test-wrong-9876"));

        let none = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(none.status(), 401);

        let no_messages = chat(
            "sk-test-valid-1234",
            &json!({"model": "gpt-4o-mini", "messages": []}),
        )
        .await;
        assert_eq!(no_messages.status(), 400);
        assert_eq!(fake.calls(), 4);
    }
}
