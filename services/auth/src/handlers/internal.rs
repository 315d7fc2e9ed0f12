use actix_web::{HttpResponse, web};
use chrono::Utc;
use zimmer_http::{HttpResult, InternalCaller};

use crate::{AppState, queries};

/// Revocations still live, for a service that starts after they happened.
pub async fn revocations(_caller: InternalCaller, state: web::Data<AppState>) -> HttpResult {
    let ttl = i64::try_from(state.platform.settings.jwt.access_ttl.as_secs()).unwrap_or(3600);
    let since = Utc::now() - chrono::Duration::seconds(ttl);
    let mut conn = state.platform.pool.get().await?;
    let list = queries::live_revocations(&mut conn, since, ttl).await?;
    Ok(HttpResponse::Ok().json(list))
}
