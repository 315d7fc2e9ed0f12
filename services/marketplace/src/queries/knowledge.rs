//! Knowledge base entries (`knowledge_entries`) and KB templates (`kb_templates`).

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::{
    FilterSome,
    schema::{kb_templates, knowledge_entries, users},
};
use zimmer_events::contracts::internal::knowledge::{KbTemplate, KnowledgeEntry};

use super::contains_pattern;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = knowledge_entries)]
#[diesel(check_for_backend(Pg))]
pub struct EntryRow {
    pub id: i64,
    pub client_id: i64,
    pub category: String,
    pub answer: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EntryRow {
    pub fn into_entry(self, client_name: Option<String>) -> KnowledgeEntry {
        KnowledgeEntry {
            id: self.id,
            client_id: self.client_id,
            client_name,
            category: self.category,
            answer: self.answer,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = kb_templates)]
#[diesel(check_for_backend(Pg))]
pub struct TemplateRow {
    pub id: i64,
    pub automation_id: i64,
    pub category: Option<String>,
    pub question: String,
    pub answer: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TemplateRow> for KbTemplate {
    fn from(t: TemplateRow) -> Self {
        Self {
            id: t.id,
            automation_id: t.automation_id,
            category: t.category,
            question: t.question,
            answer: t.answer,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// The name of an account that exists and is not deleted (entries are written for those only).
pub async fn live_account_name(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<String>> {
    users::table
        .find(id)
        .filter(users::deleted_at.is_null())
        .select(users::name)
        .first(conn)
        .await
        .optional()
}

fn entries_filtered(
    client_id: Option<i64>,
    category: Option<&str>,
) -> knowledge_entries::BoxedQuery<'static, Pg> {
    knowledge_entries::table
        .into_boxed()
        .filter_some(client_id, |c| knowledge_entries::client_id.eq(c))
        .filter_some(category, |c| {
            knowledge_entries::category.ilike(contains_pattern(c))
        })
}

/// A page of entries, newest first, each with its customer's name; and the whole count.
pub async fn entries(
    conn: &mut AsyncPgConnection,
    client_id: Option<i64>,
    category: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(EntryRow, Option<String>)>, i64)> {
    let rows = entries_filtered(client_id, category)
        .inner_join(users::table.on(users::id.eq(knowledge_entries::client_id)))
        .order(knowledge_entries::id.desc())
        .select((EntryRow::as_select(), users::name));
    let count = entries_filtered(client_id, category).count();
    let (rows, total): (Vec<(EntryRow, String)>, i64) =
        zimmer_db::paged(conn, count, rows, offset, limit).await?;
    Ok((
        rows.into_iter().map(|(r, name)| (r, Some(name))).collect(),
        total,
    ))
}

/// One customer's entries for their automations' vendors, by category (at most `limit`).
pub async fn entries_of(
    conn: &mut AsyncPgConnection,
    client_id: i64,
    limit: i64,
) -> QueryResult<Vec<EntryRow>> {
    knowledge_entries::table
        .filter(knowledge_entries::client_id.eq(client_id))
        .order((
            knowledge_entries::category.asc(),
            knowledge_entries::id.asc(),
        ))
        .limit(limit)
        .select(EntryRow::as_select())
        .load(conn)
        .await
}

pub async fn insert_entry(
    conn: &mut AsyncPgConnection,
    client_id: i64,
    category: &str,
    answer: &str,
    created_by: Option<i64>,
) -> QueryResult<EntryRow> {
    diesel::insert_into(knowledge_entries::table)
        .values((
            knowledge_entries::client_id.eq(client_id),
            knowledge_entries::category.eq(category),
            knowledge_entries::answer.eq(answer),
            knowledge_entries::created_by.eq(created_by),
        ))
        .returning(EntryRow::as_returning())
        .get_result(conn)
        .await
}

fn templates_filtered(
    automation_id: Option<i64>,
    category: Option<&str>,
) -> kb_templates::BoxedQuery<'static, Pg> {
    kb_templates::table
        .into_boxed()
        .filter_some(automation_id, |a| kb_templates::automation_id.eq(a))
        .filter_some(category, |c| {
            kb_templates::category.ilike(contains_pattern(c))
        })
}

/// A page of templates, newest first; and the whole count.
pub async fn templates(
    conn: &mut AsyncPgConnection,
    automation_id: Option<i64>,
    category: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<TemplateRow>, i64)> {
    let rows = templates_filtered(automation_id, category)
        .order(kb_templates::id.desc())
        .select(TemplateRow::as_select());
    let count = templates_filtered(automation_id, category).count();
    zimmer_db::paged(conn, count, rows, offset, limit).await
}

/// An automation's templates for its vendor, by category (none first), then oldest first.
pub async fn templates_of(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
    limit: i64,
) -> QueryResult<Vec<TemplateRow>> {
    kb_templates::table
        .filter(kb_templates::automation_id.eq(automation_id))
        .order((
            kb_templates::category.asc().nulls_first(),
            kb_templates::id.asc(),
        ))
        .limit(limit)
        .select(TemplateRow::as_select())
        .load(conn)
        .await
}

pub async fn insert_template(
    conn: &mut AsyncPgConnection,
    automation_id: i64,
    category: Option<&str>,
    question: &str,
    answer: &str,
) -> QueryResult<TemplateRow> {
    diesel::insert_into(kb_templates::table)
        .values((
            kb_templates::automation_id.eq(automation_id),
            kb_templates::category.eq(category),
            kb_templates::question.eq(question),
            kb_templates::answer.eq(answer),
        ))
        .returning(TemplateRow::as_returning())
        .get_result(conn)
        .await
}

/// Replaces the four fields; `None` when there is no such template.
pub async fn replace_template(
    conn: &mut AsyncPgConnection,
    id: i64,
    automation_id: i64,
    category: Option<&str>,
    question: &str,
    answer: &str,
) -> QueryResult<Option<TemplateRow>> {
    diesel::update(kb_templates::table.find(id))
        .set((
            kb_templates::automation_id.eq(automation_id),
            kb_templates::category.eq(category),
            kb_templates::question.eq(question),
            kb_templates::answer.eq(answer),
            kb_templates::updated_at.eq(diesel::dsl::now),
        ))
        .returning(TemplateRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete_template(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(kb_templates::table.find(id))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

pub async fn automation_exists(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    use zimmer_db::schema::automations;
    diesel::select(diesel::dsl::exists(automations::table.find(id)))
        .get_result(conn)
        .await
}

/// `(user_id, automation_id)` of a user automation, for the vendor routes' ownership check
/// (admin's token adjustments run the same check).
pub use zimmer_db::queries::user_automation_owner;
