//! Request bodies a handler reads itself (from `web::Bytes`: a body that may be absent, or one
//! read after the caller is authenticated), answered as actix's JSON extractor answers bad
//! input ([`crate::extractor_configs`]): malformed JSON 400, the wrong shape 422.

use actix_web::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The JSON body as `T`.
pub fn json_body<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| deserialize_error(&e))
}

/// A JSON body that may be absent (the panel calls several routes with no body at all):
/// empty or blank → `T::default()`, so the route gives its own clear 422 on what is missing.
pub fn optional_json<T: DeserializeOwned + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(raw)
}

/// Right syntax but the wrong shape (a missing field, a wrong type) is 422; anything else 400.
pub fn deserialize_error(e: &serde_json::Error) -> ApiError {
    if e.is_data() {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("Invalid request body: {}", strip_position(e)),
        )
    } else {
        ApiError::bad_request("Malformed JSON body")
    }
}

/// serde's message without " at line 1 column 23" (noise for a person reading it).
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        n: i64,
    }

    #[test]
    fn absent_is_default_and_bad_input_is_4xx() {
        assert!(optional_json::<Body>(b" \n").is_ok());
        let shape = optional_json::<Body>(br#"{"n": "x"}"#).unwrap_err();
        assert_eq!(shape.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!shape.detail().contains(" at line "), "{}", shape.detail());
        let syntax = json_body::<Body>(b"{").unwrap_err();
        assert_eq!(syntax.status(), StatusCode::BAD_REQUEST);
    }
}
