use actix_web::{HttpResponse, web};
use zimmer_db::DbPool;
use zimmer_http::HttpResult;
use zimmer_jwt::CurrentUser;

use crate::queries;

/// The caller's automations with balances: a bare array (clients.md), few per customer.
pub async fn my_automations(user: CurrentUser, pool: web::Data<DbPool>) -> HttpResult {
    let mut conn = pool.get().await?;
    let items = queries::user_automations(&mut conn, user.id, false).await?;
    Ok(HttpResponse::Ok().json(items))
}

/// The same, status `active` only.
pub async fn my_active_automations(user: CurrentUser, pool: web::Data<DbPool>) -> HttpResult {
    let mut conn = pool.get().await?;
    let items = queries::user_automations(&mut conn, user.id, true).await?;
    Ok(HttpResponse::Ok().json(items))
}
