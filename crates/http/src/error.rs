use std::{borrow::Cow, fmt};

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served, set by [`crate::Observability`].
    pub(crate) static REQUEST_ID: String;
}

/// The request id of the request this task is serving, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

/// A 503's `Retry-After`: dependencies that blink (a pool refill, a broker reconnect) are
/// back within seconds.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

/// The one error type of every service. It renders `{"detail", "code"}` (plus `errors` on 422
/// and `request_id` on 5xx) with the right status; the cause of a 5xx goes to the log only.
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    cause: Option<anyhow::Error>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }
    pub fn unauthorized(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests; try again later",
        );
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }
    /// 503: a dependency (database, broker, keys) is out for now. It says when to try again
    /// (`Retry-After`), as a 429 does, so clients back off instead of hammering a blink
    /// (docs/operations.md).
    pub fn unavailable(detail: impl Into<Cow<'static, str>>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        e.retry_after = Some(UNAVAILABLE_RETRY_SECS);
        e
    }
    /// 422 with one message for the whole body and per-field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .first()
            .map(|e| Cow::Owned(format!("{}: {}", e.field, e.message)))
            .unwrap_or(Cow::Borrowed("Validation failed"));
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", detail);
        e.errors = errors;
        e
    }
    /// 422 about one field.
    pub fn invalid(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
    /// An unexpected failure: 500 with a fixed body; the cause is logged, never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
        );
        e.cause = Some(cause.into());
        e
    }
    /// The same error with a more specific machine code.
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn code(&self) -> &str {
        &self.code
    }
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("cause", &self.cause.as_ref().map(|c| format!("{c:#}")))
            .finish()
    }
}

/// `Display` is what the log sees: it includes the cause.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)?;
        if let Some(cause) = &self.cause {
            write!(f, " (cause: {cause:#})")?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        res.json(Body {
            detail: &self.detail,
            code: &self.code,
            errors: &self.errors,
            request_id: self.status.is_server_error().then(request_id).flatten(),
        })
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match &e {
            Error::NotFound => Self::not_found("Not found"),
            Error::DatabaseError(Kind::UniqueViolation, _) => {
                Self::conflict("conflict", "Already exists").with_cause(e)
            }
            Error::DatabaseError(Kind::ForeignKeyViolation | Kind::CheckViolation, _) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                "The request refers to something invalid",
            )
            .with_cause(e),
            Error::DatabaseError(Kind::SerializationFailure, _) => {
                Self::unavailable("Busy; please retry").with_cause(e)
            }
            // No SQLSTATE at all (diesel-async's `UnableToSendCommand`: the connection broke
            // mid-request) or a closed connection: the database blinked, retry. A break during
            // COMMIT leaves the outcome unknown; the writes that move money or tokens carry an
            // idempotency key, so their retry is answered from the first outcome.
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _) => {
                Self::unavailable("Database unavailable").with_cause(e)
            }
            // The server rolled the transaction back for a reason that is not the request's
            // fault; diesel names no kind for these, so their (stable, English) messages tell.
            Error::DatabaseError(Kind::Unknown, info) if transient(info.message()) => {
                Self::unavailable("Busy; please retry").with_cause(e)
            }
            _ => Self::internal(e),
        }
    }
}

/// PostgreSQL errors after which the same request may simply be sent again: a deadlock
/// (40P01), the server shutting down or starting (57P01-57P03), out of connection slots
/// (53300), a lock or statement timeout (55P03, 57014).
fn transient(message: &str) -> bool {
    const TRANSIENT: [&str; 8] = [
        "deadlock detected",
        "terminating connection due to administrator command",
        "terminating connection due to crash",
        "the database system is shutting down",
        "the database system is starting up",
        "too many clients already",
        "canceling statement due to",
        "could not obtain lock",
    ];
    TRANSIENT.iter().any(|t| message.contains(t))
}

impl From<zimmer_db::PoolError> for ApiError {
    fn from(e: zimmer_db::PoolError) -> Self {
        // Pool exhausted or the database unreachable: a retryable 503, not a 500.
        Self::unavailable("Database unavailable").with_cause(anyhow::anyhow!("{e}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::internal(anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_says_when_to_retry_and_a_404_does_not() {
        let res = ApiError::unavailable("down")
            .with_code("keys_unavailable")
            .error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers().get("Retry-After").map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        let res = ApiError::not_found("gone").error_response();
        assert!(res.headers().get("Retry-After").is_none());
    }

    #[test]
    fn a_database_blink_is_a_503_and_a_bug_stays_a_500() {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        let db = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_owned()));
        for e in [
            db(Kind::UnableToSendCommand, "connection closed"),
            db(Kind::ClosedConnection, "closed"),
            db(Kind::Unknown, "deadlock detected"),
            db(
                Kind::Unknown,
                "terminating connection due to administrator command",
            ),
            db(
                Kind::Unknown,
                "canceling statement due to statement timeout",
            ),
        ] {
            assert_eq!(ApiError::from(e).status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        let bug = db(Kind::Unknown, "column \"nope\" does not exist");
        assert_eq!(
            ApiError::from(bug).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
