//! Provisioning state. The queue of work is the table itself: rows whose
//! `integration_status` is `pending` (new, or bot token changed) or `failed` (retried later).

use diesel::{PgExpressionMethods, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use zimmer_db::schema::{automations, user_automations};

/// Rows waiting for provisioning, oldest change first: `(id, integration_status)`. Pending
/// rows and failed ones are read separately, so a pile of failed rows (waiting out their
/// backoff) can never crowd new work out of the batch.
pub async fn candidates(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> QueryResult<Vec<(i64, String)>> {
    let mut rows = Vec::new();
    for status in ["pending", "failed"] {
        let batch: Vec<(i64, String)> = user_automations::table
            .filter(user_automations::integration_status.eq(status))
            .filter(user_automations::status.ne("canceled"))
            .order(user_automations::updated_at.asc())
            .limit(limit)
            .select((user_automations::id, user_automations::integration_status))
            .load(conn)
            .await?;
        rows.extend(batch);
    }
    Ok(rows)
}

/// Everything one provisioning call needs, read fresh just before it.
#[derive(Debug, Clone, Queryable)]
pub struct Job {
    pub user_automation_id: i64,
    pub user_id: i64,
    pub automation_id: i64,
    /// Legacy plaintext (rows from before sealing), else `None`.
    pub legacy_bot_token: Option<String>,
    pub bot_token_sealed: Option<Vec<u8>>,
    pub bot_token_hash: Option<Vec<u8>>,
    pub demo_tokens: i64,
    pub integration_status: String,
    pub provision_url: Option<String>,
    pub token_hash: Option<Vec<u8>>,
}

pub async fn job(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Job>> {
    user_automations::table
        .inner_join(automations::table)
        .filter(user_automations::id.eq(id))
        .select((
            user_automations::id,
            user_automations::user_id,
            user_automations::automation_id,
            user_automations::telegram_bot_token,
            user_automations::telegram_bot_token_sealed,
            user_automations::telegram_bot_token_hash,
            user_automations::demo_tokens,
            user_automations::integration_status,
            automations::provision_url,
            automations::service_token_hash,
        ))
        .first(conn)
        .await
        .optional()
}

/// Records the outcome of a call made with the token `job` read (compared by its hash, and
/// its legacy plaintext for rows from before sealing). If the customer changed the bot token
/// meanwhile, nothing is recorded: the row is `pending` again and gets its own call.
pub async fn record(
    conn: &mut AsyncPgConnection,
    job: &Job,
    provisioned: bool,
) -> QueryResult<usize> {
    let target = user_automations::table
        .filter(user_automations::id.eq(job.user_automation_id))
        .filter(
            user_automations::telegram_bot_token_hash
                .is_not_distinct_from(job.bot_token_hash.clone()),
        )
        .filter(
            user_automations::telegram_bot_token.is_not_distinct_from(job.legacy_bot_token.clone()),
        )
        .filter(user_automations::integration_status.ne("provisioned"));
    if provisioned {
        diesel::update(target)
            .set((
                user_automations::integration_status.eq("provisioned"),
                user_automations::provisioned_at.eq(Some(chrono::Utc::now())),
                user_automations::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
    } else {
        diesel::update(target)
            .set((
                user_automations::integration_status.eq("failed"),
                user_automations::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
    }
}
