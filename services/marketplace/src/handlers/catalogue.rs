//! The public catalogue: answered from this process's memory (the serialised body, see
//! `local_cache`), else from Redis (see `queries/cache.rs`), else from the database.

use actix_web::{HttpResponse, web, web::Bytes};
use serde::{Deserialize, Serialize};
use zimmer_http::{ApiError, HttpResult, PageQuery, Paged};
use zimmer_jwt::MaybeUser;

use crate::{
    AppState,
    local_cache::json_ok,
    queries::catalogue::{self, CatalogueItem},
};

const SEARCH_MAX_CHARS: usize = 100;
/// The panel's `/api/optimized/...` call has no paging: it gets up to this many.
const OPTIMIZED_PAGE_SIZE: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogueQuery {
    /// Search text (at most 100 characters); also accepted as `q`.
    #[serde(default, alias = "q")]
    pub search: Option<String>,
    #[serde(default)]
    pub page: Option<i64>,
    #[serde(default)]
    pub page_size: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedPage {
    items: Vec<CatalogueItem>,
    total: i64,
}

fn search_text(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > SEARCH_MAX_CHARS {
        return Err(ApiError::invalid("search", "is too long"));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid("search", "contains control characters"));
    }
    Ok(Some(text.to_owned()))
}

async fn page_of(
    state: &AppState,
    search: Option<&str>,
    page: &PageQuery,
) -> Result<CachedPage, ApiError> {
    let query = format!(
        "list|{}|{}|{}",
        page.page(),
        page.page_size(),
        search.unwrap_or("")
    );
    let generation = state.cache.generation().await;
    if let Some(g) = &generation
        && let Some(hit) = state.cache.get::<CachedPage>(g, &query).await
    {
        return Ok(hit);
    }
    let (items, total) = {
        let mut conn = state.platform.pool.get().await?;
        catalogue::list(&mut conn, search, page.limit(), page.offset()).await?
    };
    let fresh = CachedPage { items, total };
    if let Some(g) = &generation {
        state.cache.put(g, &query, &fresh).await;
    }
    Ok(fresh)
}

/// The answer for `shape` and this query from memory, else built by `build` from the page
/// (Redis or the database) and kept for the next callers.
async fn answer<T: Serialize>(
    state: &AppState,
    shape: &str,
    search: Option<&str>,
    page: &PageQuery,
    build: impl FnOnce(CachedPage) -> T,
) -> HttpResult {
    let key = format!(
        "{shape}|{}|{}|{}",
        page.page(),
        page.page_size(),
        search.unwrap_or("")
    );
    let local = &state.cache.pages;
    if let Some(body) = local.get(key.as_str()) {
        return Ok(json_ok(body));
    }
    let ticket = local.ticket();
    let found = page_of(state, search, page).await?;
    let body = Bytes::from(serde_json::to_vec(&build(found)).map_err(ApiError::internal)?);
    local.store(key, body.clone(), ticket);
    Ok(json_ok(body))
}

/// `GET /api/automations/marketplace` (and `/available`, `/api/automations`): listed, active
/// automations, `search` in name and description, paged.
pub async fn list(state: web::Data<AppState>, query: web::Query<CatalogueQuery>) -> HttpResult {
    let search = search_text(query.search.as_deref())?;
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    answer(&state, "list", search.as_deref(), &page, |found| {
        Paged::new(found.items, found.total, &page)
    })
    .await
}

/// `GET /api/optimized/automations/marketplace`: the panel's shape, `{automations: […]}`.
pub async fn optimized(
    state: web::Data<AppState>,
    query: web::Query<CatalogueQuery>,
) -> HttpResult {
    let search = search_text(query.search.as_deref())?;
    let page = PageQuery {
        page: query.page,
        page_size: Some(query.page_size.unwrap_or(OPTIMIZED_PAGE_SIZE)),
    };
    answer(&state, "optimized", search.as_deref(), &page, |found| {
        serde_json::json!({
            "automations": found.items,
            "total": found.total,
        })
    })
    .await
}

#[derive(Debug, Serialize)]
struct Detail {
    #[serde(flatten)]
    automation: CatalogueItem,
    /// Whether the caller (with a Bearer) has added it; false for anonymous callers.
    user_has_automation: bool,
}

/// `GET /api/automations/{id}`: one listed automation, unwrapped (docs/panels.md); a `?t=`
/// cache-buster is ignored.
pub async fn detail(
    state: web::Data<AppState>,
    user: MaybeUser,
    path: web::Path<i64>,
) -> HttpResult {
    let id = path.into_inner();
    let query = format!("item|{id}");
    let generation = state.cache.generation().await;
    let cached = match &generation {
        Some(g) => state.cache.get::<Option<CatalogueItem>>(g, &query).await,
        None => None,
    };
    let automation = match cached {
        Some(hit) => hit,
        None => {
            let fresh = {
                let mut conn = state.platform.pool.get().await?;
                catalogue::listed_by_id(&mut conn, id).await?
            };
            // Misses are not cached: random ids must not fill Redis.
            if let (Some(g), Some(_)) = (&generation, &fresh) {
                state.cache.put(g, &query, &fresh).await;
            }
            fresh
        }
    };
    let automation = automation.ok_or_else(|| ApiError::not_found("Automation not found"))?;
    let user_has_automation = match user.0 {
        Some(u) => {
            let mut conn = state.platform.pool.get().await?;
            catalogue::user_has(&mut conn, u.id, id).await?
        }
        None => false,
    };
    Ok(HttpResponse::Ok().json(Detail {
        automation,
        user_has_automation,
    }))
}
