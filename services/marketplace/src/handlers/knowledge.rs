//! Knowledge base entries and KB templates (docs/panels.md "Knowledge base entries", "KB
//! templates"): the internal API admin calls for staff (types in
//! `zimmer_contracts::internal::knowledge`), and the vendors' read of a customer's knowledge
//! (`GET /api/automation-usage/knowledge`, service token checked as for consumption).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zimmer_events::contracts::internal::knowledge::{
    KbTemplate, KnowledgeEntry, KnowledgeList, KnowledgeQuery, ListWindow, NewKnowledgeEntry,
    TemplateInput, TemplateList, TemplateQuery,
};
use zimmer_http::{ApiError, HttpResult, InternalCaller};

use super::{
    consume::{vendor_automation, vendor_customer},
    json_body,
};
use crate::{
    AppState,
    domain::knowledge as rules,
    ops::knowledge::{self as ops, TemplateFields},
    queries::knowledge as q,
};

/// Rows a vendor gets at most of each kind (entries, templates) in one read.
const VENDOR_MAX_ROWS: i64 = 5000;

/// `GET /internal/knowledge?client_id=&category=&offset=&limit=`
pub async fn list_entries(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<KnowledgeQuery>,
    window: web::Query<ListWindow>,
) -> HttpResult {
    let query = query.into_inner();
    let category = rules::filter_text("category", query.category.as_deref())?;
    let (offset, limit) = window.bounds();
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::entries(
        &mut conn,
        query.client_id,
        category.as_deref(),
        offset,
        limit,
    )
    .await?;
    let items: Vec<KnowledgeEntry> = rows
        .into_iter()
        .map(|(row, name)| row.into_entry(name))
        .collect();
    Ok(HttpResponse::Ok().json(KnowledgeList { items, total }))
}

/// `POST /internal/knowledge` → 201 with the entry.
pub async fn create_entry(
    _: InternalCaller,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let body: NewKnowledgeEntry = json_body(&raw)?;
    let (category, answer) = rules::entry(&body.category, &body.answer)?;
    if body.client_id <= 0 {
        return Err(ApiError::not_found("Client not found"));
    }
    let mut conn = state.platform.pool.get().await?;
    let entry = ops::create_entry(
        &mut conn,
        body.client_id,
        &category,
        &answer,
        body.created_by,
    )
    .await?;
    Ok(HttpResponse::Created().json(entry))
}

/// `GET /internal/kb-templates?automation_id=&category=&offset=&limit=`
pub async fn list_templates(
    _: InternalCaller,
    state: web::Data<AppState>,
    query: web::Query<TemplateQuery>,
    window: web::Query<ListWindow>,
) -> HttpResult {
    let query = query.into_inner();
    let category = rules::filter_text("category", query.category.as_deref())?;
    let (offset, limit) = window.bounds();
    let mut conn = state.platform.pool.get().await?;
    let (rows, total) = q::templates(
        &mut conn,
        query.automation_id,
        category.as_deref(),
        offset,
        limit,
    )
    .await?;
    let items: Vec<KbTemplate> = rows.into_iter().map(KbTemplate::from).collect();
    Ok(HttpResponse::Ok().json(TemplateList { items, total }))
}

async fn save_template(
    state: &AppState,
    id: Option<i64>,
    raw: &[u8],
) -> Result<KbTemplate, ApiError> {
    let body: TemplateInput = json_body(raw)?;
    let (category, question, answer) =
        rules::template(body.category.as_deref(), &body.question, &body.answer)?;
    let mut conn = state.platform.pool.get().await?;
    ops::save_template(
        &mut conn,
        id,
        &TemplateFields {
            automation_id: body.automation_id,
            category: category.as_deref(),
            question: &question,
            answer: &answer,
        },
    )
    .await
}

/// `POST /internal/kb-templates` → 201 with the template.
pub async fn create_template(
    _: InternalCaller,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let t = save_template(&state, None, &raw).await?;
    Ok(HttpResponse::Created().json(t))
}

/// `PUT /internal/kb-templates/{id}`: replaces the four fields.
pub async fn replace_template(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    raw: web::Bytes,
) -> HttpResult {
    let t = save_template(&state, Some(path.into_inner()), &raw).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// `DELETE /internal/kb-templates/{id}` → 204.
pub async fn delete_template(
    _: InternalCaller,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    if q::delete_template(&mut conn, path.into_inner()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("Template not found"))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VendorQuery {
    pub user_automation_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct VendorEntry {
    id: i64,
    category: String,
    answer: String,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct VendorTemplate {
    id: i64,
    category: Option<String>,
    question: String,
    answer: String,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct VendorKnowledge {
    entries: Vec<VendorEntry>,
    templates: Vec<VendorTemplate>,
}

/// A positive id from a query value; 422 naming the field otherwise.
pub(crate) fn query_id(field: &'static str, raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Err(ApiError::invalid(field, "is required")),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::invalid(field, "must be a positive id")),
    }
}

/// `GET /api/automation-usage/knowledge?user_automation_id=` (vendor): the customer's entries
/// and the automation's templates. The token must belong to the automation of that user
/// automation (else 401, as for consumption).
pub async fn vendor_read(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<VendorQuery>,
) -> HttpResult {
    let mut conn = state.platform.pool.get().await?;
    let (automation_id, _status) = vendor_automation(&req, &mut conn).await?;
    let ua_id = query_id("user_automation_id", query.user_automation_id.as_deref())?;
    let user_id = vendor_customer(&mut conn, automation_id, ua_id).await?;
    let entries = q::entries_of(&mut conn, user_id, VENDOR_MAX_ROWS)
        .await?
        .into_iter()
        .map(|e| VendorEntry {
            id: e.id,
            category: e.category,
            answer: e.answer,
            updated_at: e.updated_at,
        })
        .collect();
    let templates = q::templates_of(&mut conn, automation_id, VENDOR_MAX_ROWS)
        .await?
        .into_iter()
        .map(|t| VendorTemplate {
            id: t.id,
            category: t.category,
            question: t.question,
            answer: t.answer,
            updated_at: t.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(VendorKnowledge { entries, templates }))
}
