//! Knowledge base entries and KB templates on the admin dashboard (docs/panels.md "Knowledge
//! base, KB templates, KB monitoring", "Knowledge base entries", "KB templates"). The
//! marketplace owns them: admin lists through its internal API (names resolved here, as the
//! other lists do) and changes them through it, auditing every change. The request and answer
//! types are the shared `zimmer_contracts::internal::knowledge`.

use actix_web::{HttpResponse, web};
use reqwest::Method;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use zimmer_events::contracts::internal::knowledge::{
    KbTemplate, KnowledgeEntry, KnowledgeList, NewKnowledgeEntry, TemplateInput, TemplateList,
};
use zimmer_http::{ApiError, HttpResult};

use super::{
    ListPage, Listing, WHOLE_LIST, listed, only_view, path_id, query_id, to_json,
    user_automations::automation_names_of,
};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner, read_owner, typed},
    rbac::Staff,
};

/// An id in a body: a number, or digits in a string (a form's select value); 422 otherwise.
fn body_id(field: &'static str, v: Option<&Value>) -> Result<i64, ApiError> {
    let id = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    id.filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive id"))
}

/// A text field of a body: absent or null is `""` (the owner's validation then names it).
fn body_text(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid("body", "text fields must be strings")),
    }
}

/// The body as a JSON object (422 otherwise); unknown fields are ignored.
fn object(raw: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match zimmer_http::json_body::<Value>(raw)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid(
            "body",
            "the request body must be a JSON object",
        )),
    }
}

/// This page of one of the marketplace's lists at `path` (`{items, total}`, as the contract
/// type `L`): asked with the page's `offset`/`limit`, the id filter `(key, raw id)` (checked as
/// [`query_id`]) and, for the lists that have one, a non-blank category.
pub(crate) async fn owner_list<L: DeserializeOwned>(
    state: &AppState,
    path: &str,
    p: &ListPage,
    (key, id): (&'static str, Option<&str>),
    category: Option<&str>,
) -> Result<L, ApiError> {
    let mut pairs = vec![
        ("offset", p.offset.to_string()),
        ("limit", p.limit.to_string()),
    ];
    if let Some(id) = query_id(key, id)? {
        pairs.push((key, id.to_string()));
    }
    if let Some(c) = category.map(str::trim).filter(|c| !c.is_empty()) {
        pairs.push(("category", c.to_owned()));
    }
    read_owner(state, Service::Marketplace, path, &pairs).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryQuery {
    pub client_id: Option<String>,
    pub category: Option<String>,
}

/// `GET /api/admin/knowledge?client_id=&category=`: `{knowledge_entries, items, total,
/// total_count, page, page_size}`, newest first; `category` matches case-insensitively
/// anywhere.
pub async fn list(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<EntryQuery>,
) -> HttpResult {
    let page = query.page(WHOLE_LIST);
    let id = ("client_id", query.client_id.as_deref());
    let category = query.category.as_deref();
    let list: KnowledgeList =
        owner_list(&state, "/internal/knowledge", &page, id, category).await?;
    listed("knowledge_entries", list.items, list.total, &page)
}

/// `POST /api/admin/knowledge` `{client_id, category, answer}` → 201 with the entry.
pub async fn create(staff: Staff, state: web::Data<AppState>, raw: web::Bytes) -> HttpResult {
    let body = object(&raw)?;
    let new = NewKnowledgeEntry {
        client_id: body_id("client_id", body.get("client_id"))?,
        category: body_text(body.get("category"))?.unwrap_or_default(),
        answer: body_text(body.get("answer"))?.unwrap_or_default(),
        created_by: Some(staff.id()),
    };
    let reply = call_owner(
        &state,
        &staff,
        OwnerCall::new(Service::Marketplace, Method::POST, "/internal/knowledge")
            .json(to_json(&new)?),
        |reply| {
            Audit::of_answer(
                "knowledge.create",
                "knowledge_entry",
                reply,
                json!({ "client_id": new.client_id, "category": reply.body.get("category") }),
            )
        },
    )
    .await?;
    let entry: KnowledgeEntry = typed(Service::Marketplace, reply)?;
    Ok(HttpResponse::Created().json(entry))
}

/// A template as the dashboard reads it: the contract's fields and `automation_name`.
#[derive(Debug, Serialize)]
struct TemplateView {
    #[serde(flatten)]
    template: KbTemplate,
    automation_name: Option<String>,
}

async fn template_views(
    state: &AppState,
    items: Vec<KbTemplate>,
) -> Result<Vec<TemplateView>, ApiError> {
    let automations = {
        let mut conn = state.platform.pool.get().await?;
        automation_names_of(&mut conn, items.iter().map(|t| t.automation_id)).await?
    };
    Ok(items
        .into_iter()
        .map(|template| TemplateView {
            automation_name: automations.get(&template.automation_id).cloned(),
            template,
        })
        .collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    pub automation_id: Option<String>,
    pub category: Option<String>,
}

/// `GET /api/admin/kb-templates?automation_id=&category=`: `{templates, items, total,
/// total_count, page, page_size}`, newest first.
pub async fn list_templates(
    _staff: Staff,
    state: web::Data<AppState>,
    query: Listing<TemplateQuery>,
) -> HttpResult {
    let page = query.page(WHOLE_LIST);
    let id = ("automation_id", query.automation_id.as_deref());
    let category = query.category.as_deref();
    let list: TemplateList =
        owner_list(&state, "/internal/kb-templates", &page, id, category).await?;
    let items = template_views(&state, list.items).await?;
    listed("templates", items, list.total, &page)
}

/// The four fields of a template from the dashboard's body (`category` `""` or null = none).
fn template_input(raw: &[u8]) -> Result<TemplateInput, ApiError> {
    let body = object(raw)?;
    Ok(TemplateInput {
        automation_id: body_id("automation_id", body.get("automation_id"))?,
        category: body_text(body.get("category"))?.filter(|c| !c.trim().is_empty()),
        question: body_text(body.get("question"))?.unwrap_or_default(),
        answer: body_text(body.get("answer"))?.unwrap_or_default(),
    })
}

async fn save_template(
    state: &AppState,
    staff: &Staff,
    id: Option<i64>,
    input: &TemplateInput,
) -> Result<TemplateView, ApiError> {
    let path = id.map_or_else(
        || "/internal/kb-templates".to_owned(),
        |id| format!("/internal/kb-templates/{id}"),
    );
    let method = if id.is_some() {
        Method::PUT
    } else {
        Method::POST
    };
    let action = if id.is_some() {
        "kb_template.update"
    } else {
        "kb_template.create"
    };
    let reply = call_owner(
        state,
        staff,
        OwnerCall::new(Service::Marketplace, method, &path).json(to_json(input)?),
        |reply| {
            Audit::of_answer(
                action,
                "kb_template",
                reply,
                json!({
                    "automation_id": input.automation_id,
                    "category": reply.body.get("category"),
                    "question": reply.body.get("question"),
                }),
            )
        },
    )
    .await?;
    let t: KbTemplate = typed(Service::Marketplace, reply)?;
    only_view(template_views(state, vec![t]).await?, "template")
}

/// `POST /api/admin/kb-templates` `{automation_id, category, question, answer}` → 201.
pub async fn create_template(
    staff: Staff,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> HttpResult {
    let input = template_input(&raw)?;
    let view = save_template(&state, &staff, None, &input).await?;
    Ok(HttpResponse::Created().json(view))
}

/// `PUT /api/admin/kb-templates/{id}`: replaces the four fields.
pub async fn update_template(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    raw: web::Bytes,
) -> HttpResult {
    let id = path_id(&path)?;
    let input = template_input(&raw)?;
    let view = save_template(&state, &staff, Some(id), &input).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/admin/kb-templates/{id}` (no body) → 204.
pub async fn delete_template(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResult {
    let id = path_id(&path)?;
    let path = format!("/internal/kb-templates/{id}");
    let call = OwnerCall::new(Service::Marketplace, Method::DELETE, path);
    call_owner(&state, &staff, call, |_| {
        Audit::new("kb_template.delete", "kb_template", Some(id), json!({}))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
