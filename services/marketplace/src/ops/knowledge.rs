//! Knowledge base entries and KB templates written by staff (through admin), each in one
//! transaction that first checks what it refers to (docs/panels.md "Knowledge base entries",
//! "KB templates"). Nothing here emits an event: nobody consumes these changes.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use zimmer_events::contracts::internal::knowledge::{KbTemplate, KnowledgeEntry};
use zimmer_http::ApiError;

use crate::queries::knowledge as q;

/// A checked knowledge entry for `client_id`, which must be an existing, not deleted account
/// (404 otherwise).
pub async fn create_entry(
    conn: &mut AsyncPgConnection,
    client_id: i64,
    category: &str,
    answer: &str,
    created_by: Option<i64>,
) -> Result<KnowledgeEntry, ApiError> {
    conn.transaction(async |conn| {
        let name = q::live_account_name(conn, client_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Client not found"))?;
        let row = q::insert_entry(conn, client_id, category, answer, created_by).await?;
        Ok::<_, ApiError>(row.into_entry(Some(name)))
    })
    .await
}

/// The checked fields of a template.
pub struct TemplateFields<'a> {
    pub automation_id: i64,
    pub category: Option<&'a str>,
    pub question: &'a str,
    pub answer: &'a str,
}

/// Creates a template (`id` none) or replaces all of one's fields; an unknown automation or
/// template is 404.
pub async fn save_template(
    conn: &mut AsyncPgConnection,
    id: Option<i64>,
    t: &TemplateFields<'_>,
) -> Result<KbTemplate, ApiError> {
    conn.transaction(async |conn| {
        if !q::automation_exists(conn, t.automation_id).await? {
            return Err(ApiError::not_found("Automation not found"));
        }
        let row = match id {
            None => {
                q::insert_template(conn, t.automation_id, t.category, t.question, t.answer).await?
            }
            Some(id) => {
                q::replace_template(conn, id, t.automation_id, t.category, t.question, t.answer)
                    .await?
                    .ok_or_else(|| ApiError::not_found("Template not found"))?
            }
        };
        Ok::<_, ApiError>(KbTemplate::from(row))
    })
    .await
}
