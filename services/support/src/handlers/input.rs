//! Request bodies that are JSON or `multipart/form-data` with at most one file (the panel
//! sends multipart for new tickets, JSON elsewhere). Limits are enforced while reading, so an
//! oversized upload is refused before it is all in memory and nothing is ever stored for it.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::{
    HttpRequest,
    http::{StatusCode, header::CONTENT_TYPE},
    web,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use zimmer_http::ApiError;

pub use crate::domain::attachment::Upload;
use crate::domain::attachment::{self, Rejection};

/// Text fields of a form: generous for a message, small enough to never matter.
const MAX_FIELD_BYTES: usize = 64 * 1024;
const MAX_PARTS: usize = 16;

/// A file as received, not yet checked.
#[derive(Debug)]
pub struct RawFile {
    pub filename: String,
    pub declared: Option<String>,
    pub bytes: Vec<u8>,
}

pub enum Body {
    Json(serde_json::Value),
    Form {
        fields: HashMap<String, String>,
        file: Option<RawFile>,
    },
}

fn too_large(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("{what} is too large"),
    )
}

pub fn attachment_too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_too_large",
        format!(
            "The attachment is larger than {} MB",
            max.div_ceil(1024 * 1024)
        ),
    )
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn is_json_or_absent(req: &HttpRequest) -> bool {
    match req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(v) => {
            let essence = v
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        }
    }
}

/// Reads a JSON or multipart body. `json_limit` bounds JSON; `max_file` the one file.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    json_limit: usize,
    max_file: usize,
) -> Result<Body, ApiError> {
    if is_multipart(req) {
        return read_multipart(req, payload, max_file).await;
    }
    if !is_json_or_absent(req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json or multipart/form-data",
        ));
    }
    let raw = read_json_bytes(payload, json_limit).await?;
    parse_json(&raw)
}

async fn read_json_bytes(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut raw = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("Could not read the request body"))?;
        if raw.len() + chunk.len() > limit {
            return Err(too_large("Request body"));
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw)
}

fn parse_json(raw: &[u8]) -> Result<Body, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body::Json(serde_json::Value::Object(Default::default())));
    }
    let value = zimmer_http::json_body::<serde_json::Value>(raw)?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "The request body must be a JSON object",
        ));
    }
    Ok(Body::Json(value))
}

/// A JSON object into a typed body: wrong types answer 422 like the JSON extractor does.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| zimmer_http::deserialize_error(&e))
}

fn multipart_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Malformed multipart body: {e}"))
}

/// The uploader's file name: RFC 5987 `filename*` wins over `filename`.
fn part_filename(field: &actix_multipart::Field) -> Option<String> {
    let cd = field.content_disposition()?;
    if let Some(ext) = cd.get_filename_ext() {
        return Some(String::from_utf8_lossy(&ext.value).into_owned());
    }
    cd.get_filename().map(str::to_owned)
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    max_file: usize,
) -> Result<Body, ApiError> {
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut fields = HashMap::new();
    let mut file: Option<RawFile> = None;
    let mut parts = 0;
    while let Some(item) = multipart.next().await {
        let mut field = item.map_err(multipart_error)?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::bad_request("Too many form fields"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match part_filename(&field) {
            Some(filename) => {
                // Browsers send an empty, nameless file part when nothing was chosen.
                let declared = field.content_type().map(|m| m.essence_str().to_owned());
                let mut bytes = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(multipart_error)?;
                    if bytes.len() + chunk.len() > max_file {
                        drain(&mut field, max_file.saturating_mul(2)).await;
                        return Err(attachment_too_large(max_file));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if filename.is_empty() && bytes.is_empty() {
                    continue;
                }
                if file.is_some() {
                    return Err(ApiError::invalid(
                        "attachment",
                        "only one file can be attached",
                    ));
                }
                file = Some(RawFile {
                    filename,
                    declared,
                    bytes,
                });
            }
            None => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(multipart_error)?;
                    if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
                        return Err(too_large("A form field"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::bad_request("Form fields must be UTF-8 text"))?;
                fields.insert(name, text);
            }
        }
    }
    Ok(Body::Form { fields, file })
}

/// Reads (and drops) the rest of an oversized part, up to `cap` bytes, so the client gets the
/// 413 instead of a connection reset while it is still sending. The gateway bounds bodies
/// anyway (`client_max_body_size`).
async fn drain(field: &mut actix_multipart::Field, cap: usize) {
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = field.next().await {
        seen += chunk.len();
        if seen > cap {
            break;
        }
    }
}

/// The checks of `domain::attachment` as HTTP answers: 422 for a bad name or an empty file,
/// 415 for content that is not allowed or does not match its name or declared type.
pub fn check_upload(raw: RawFile) -> Result<Upload, ApiError> {
    match attachment::check(&raw.filename, raw.declared.as_deref(), &raw.bytes) {
        Ok(checked) => Ok(Upload {
            filename: checked.filename,
            kind: checked.kind,
            bytes: raw.bytes,
        }),
        Err(Rejection::BadName(msg)) => Err(ApiError::invalid("attachment", msg)),
        Err(Rejection::Empty) => Err(ApiError::invalid("attachment", "the file is empty")),
        Err(Rejection::Type(msg)) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_attachment_type",
            msg,
        )),
    }
}

/// An optional form field, trimmed; empty = absent.
pub fn form_field(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
