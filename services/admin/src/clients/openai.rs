//! The one call admin makes to OpenAI: a key test (docs/panels.md "OpenAI keys: per-automation
//! limits and test"). One chat completion with `max_tokens: 1` to `OPENAI_TEST_MODEL` at
//! `OPENAI_BASE_URL`, within `OPENAI_TEST_TIMEOUT_SECS`, no redirects. The key lives only in
//! this call's memory and its `Authorization` header; nothing about it is logged, and OpenAI's
//! messages are redacted before they go anywhere ([`crate::domain::keys::redact`]).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{
    config::AdminConfig,
    domain::keys::{TestOutcome, redact},
};

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [Message<'a>; 1],
    max_tokens: u32,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatAnswer {
    model: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

/// Sends the test completion with `key` and reports what happened (never an `Err`: every
/// failure is an outcome the dashboard shows).
pub async fn test_key(config: &AdminConfig, key: &str) -> TestOutcome {
    let started = Instant::now();
    let elapsed = |s: Instant| i64::try_from(s.elapsed().as_millis()).unwrap_or(i64::MAX);
    let http = match reqwest::Client::builder()
        .timeout(config.openai_test_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(h) => h,
        Err(_) => {
            return TestOutcome::Failed {
                latency_ms: 0,
                message: "could not prepare the request".to_owned(),
            };
        }
    };
    let body = ChatRequest {
        model: &config.openai_test_model,
        messages: [Message {
            role: "user",
            content: "ping",
        }],
        max_tokens: 1,
    };
    let url = format!("{}/chat/completions", config.openai_base_url);
    let res = http.post(url).bearer_auth(key).json(&body).send().await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let message = if e.is_timeout() {
                format!(
                    "OpenAI did not answer within {} s",
                    config.openai_test_timeout.as_secs()
                )
            } else if e.is_connect() {
                "OpenAI could not be reached".to_owned()
            } else {
                "the request to OpenAI failed".to_owned()
            };
            return TestOutcome::Failed {
                latency_ms: elapsed(started),
                message,
            };
        }
    };
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let latency_ms = elapsed(started);
    if (200..300).contains(&status) {
        return match serde_json::from_str::<ChatAnswer>(&text) {
            Ok(a) => TestOutcome::Passed {
                latency_ms,
                model: redact(&a.model, key),
            },
            Err(_) => TestOutcome::Failed {
                latency_ms,
                message: "OpenAI answered without a model".to_owned(),
            },
        };
    }
    let detail = serde_json::from_str::<ErrorAnswer>(&text)
        .map(|e| redact(&e.error.message, key))
        .unwrap_or_default();
    let message = if detail.is_empty() {
        format!("OpenAI answered {status}")
    } else {
        format!("OpenAI answered {status}: {detail}")
    };
    if status == 401 || status == 403 {
        TestOutcome::Refused {
            latency_ms,
            message,
        }
    } else {
        TestOutcome::Failed {
            latency_ms,
            message,
        }
    }
}
