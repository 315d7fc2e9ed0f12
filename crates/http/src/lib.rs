//! What every service's HTTP layer shares: the error type and its JSON shape, extractor
//! configuration that turns bad input into 4xx, the observability middleware (request id,
//! trace context, logs, metrics), health/readiness/metrics routes, input validation helpers
//! and the server bootstrap.

pub mod body;
mod client;
mod error;
mod internal;
pub mod local_cache;
mod middleware;
pub mod paging;
mod probes;
pub mod routes;
mod server;
mod time_bound;
pub mod validate;

pub use body::{deserialize_error, json_body, optional_json};
pub use client::client_ip;
pub use error::{ApiError, ApiResult, FieldError, request_id};
pub use internal::InternalCaller;
pub use middleware::Observability;
pub use paging::{PageQuery, Paged, Window, WindowPage};
pub use probes::{Check, Probes};
pub use server::{bind, default_service, extractor_configs, probe_routes};
pub use time_bound::time_bound;

/// Answers `{"detail", "code"}` shapes: handlers return `ApiResult<HttpResponse>`.
pub type HttpResult = ApiResult<actix_web::HttpResponse>;
